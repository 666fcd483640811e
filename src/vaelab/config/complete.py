"""The dataset keys one's own data decide (`dataset=images`, `dataset=arrays`): filled into the
config from the data when a run starts, before the config is checked and the model built."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from vaelab.config.check import _error, _locate
from vaelab.config.keys import CHECKS, is_int

__all__ = ["DESCRIBED", "complete_dataset"]
log = logging.getLogger(__name__)

# What a datamodule's `describe` gives. The size and range are facts of the data, which a value in
# the config must agree with; the image shape (any that holds input_dim values), the likelihood and
# its levels are choices the config may make differently.
DESCRIBED = ("input_dim", "image_shape", "input_min", "input_max", "likelihood", "num_levels")
FACTS = ("input_dim", "input_min", "input_max")
SOURCES = {"root": "a folder", "path": "a file"}  # the datamodule key that names where its data are


def complete_dataset(cfg: DictConfig) -> None:
    """Where `dataset.<key>` is null for a key of DESCRIBED and the datamodule class has `describe`,
    read the data and fill it in (in place). The folder or file becomes an absolute path, so that
    the saved config names it from anywhere."""
    dataset = cfg.get("dataset")
    if not isinstance(dataset, DictConfig) or not any(
        key in dataset and OmegaConf.select(dataset, key, throw_on_resolution_failure=False) is None
        for key in DESCRIBED
    ):
        return
    datamodule = _locate("dataset.datamodule._target_", dataset.datamodule.get("_target_"))
    if not hasattr(datamodule, "describe"):
        return  # check_config names the null key
    own = [key for key in CHECKS if key.count(".") == 1 and key.startswith("dataset.")]
    for key in own:  # the dataset's own values first: they are read with the data
        name = key.removeprefix("dataset.")
        ok, allowed = CHECKS[key]
        if name not in (*DESCRIBED, *SOURCES) and name in dataset and not ok(dataset[name]):
            raise _error(key, dataset[name], allowed)
    with open_dict(dataset):
        for key, what in SOURCES.items():
            if key in dataset and key in dataset.datamodule:
                if dataset[key] is None:
                    raise _error(f"dataset.{key}", None, f"give {what}: dataset.{key}=<{what[2:]} of your data>")
                dataset[key] = str(Path(dataset[key]).expanduser().absolute())
        settings = OmegaConf.to_container(dataset.datamodule, resolve=True)
        skip = ("_target_", "batch_size", "eval_batch_size")
        found = datamodule.describe(**{key: value for key, value in settings.items() if key not in skip})
        for key in DESCRIBED:
            if dataset.get(key) is None:
                dataset[key] = found[key]
            elif key in FACTS and dataset[key] != found[key]:
                raise _error(
                    f"dataset.{key}", dataset[key], f"the data have {found[key]}; leave it null to take it from them"
                )
    init_data = OmegaConf.select(cfg, "prior.init", default=None) == "data"
    if (
        init_data
        and is_int(components := OmegaConf.select(cfg, "prior.num_components"))
        and components > found["train_size"]
    ):
        raise _error(
            "prior.num_components",
            components,
            f"at most {found['train_size']} with prior.init=data "
            f"(the training split has {found['train_size']} examples to copy); or prior.init=random",
        )
    source = next(dataset[key] for key in SOURCES if key in dataset)
    log.info(
        "vaelab: %s: input_dim %d, image_shape %s, values %s..%s, likelihood %s (%d levels)",
        source,
        dataset.input_dim,
        list(dataset.image_shape),
        dataset.input_min,
        dataset.input_max,
        dataset.likelihood,
        dataset.num_levels,
    )
