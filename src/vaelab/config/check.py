"""Validation of a composed config, once, before any data is read or anything is built.

Every error is one line that names the key, the value found and what is allowed:
`<key>=<value> is not allowed: <what is allowed>`. `check_config` goes through the tables of `vaelab.config.keys`
(one check per key; keys a config does not have are skipped), then the rules that involve several
keys, then the machine (GPUs) and the files the run will read.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from vaelab.config.keys import (
    CHECKS,
    CHOICES,
    NON_NEGATIVE_INTS,
    ORDERED,
    POSITIVE_INTS,
    POSITIVE_REALS,
    SAME_AS,
    SECTIONS,
    TRAINER_RESERVED,
    is_int,
    is_non_negative_int,
    is_positive_int,
    is_positive_real,
)
from vaelab.errors import ConfigError

__all__ = ["check_config"]


def _error(key: str, value: Any, allowed: str) -> ConfigError:
    shown = "null" if value is None else str(value).lower() if isinstance(value, bool) else repr(value)  # as typed
    return ConfigError(f"{key}={shown} is not allowed: {allowed}")


def check_config(cfg: DictConfig, machine: bool = True, files: bool = True) -> None:
    """Raise ConfigError for the first bad value. `machine=False` skips the checks of this
    machine (GPUs: to evaluate a run trained elsewhere), `files=False` those of the data files."""

    def value(key: str):
        try:
            found = OmegaConf.select(cfg, key, default=None)
        except Exception as error:  # noqa: BLE001 - an interpolation that does not resolve, a missing value
            parent, _, last = key.rpartition(".")
            node = OmegaConf.select(cfg, parent, throw_on_resolution_failure=False) if parent else cfg
            raw = node._get_node(last)._value() if isinstance(node, DictConfig) and last in node else None
            raise _error(key, raw, f"cannot be resolved ({str(error).splitlines()[0]})") from None
        return OmegaConf.to_container(found, resolve=True) if isinstance(found, (DictConfig, ListConfig)) else found

    def present(key: str) -> bool:  # the key exists (its value may be null, or fail to resolve)
        parent, _, last = key.rpartition(".")
        node = OmegaConf.select(cfg, parent, throw_on_resolution_failure=False) if parent else cfg
        return isinstance(node, DictConfig) and last in node.keys()  # noqa: SIM118 - `in` skips keys set to ???

    for keys, ok, allowed in (
        (POSITIVE_INTS, is_positive_int, "a positive integer"),
        (POSITIVE_REALS, is_positive_real, "a positive number"),
        (NON_NEGATIVE_INTS, is_non_negative_int, "an integer >= 0"),
    ):
        for key in keys:
            if present(key) and not ok(value(key)):
                raise _error(key, value(key), f"must be {allowed}")
    for key, allowed in CHOICES.items():
        if present(key) and value(key) not in allowed:
            raise _error(key, value(key), f"choose one of {', '.join(map(str, allowed))}")
    for key, (ok, allowed) in CHECKS.items():
        if present(key) and not ok(value(key)):
            raise _error(key, value(key), allowed)

    _check_known_keys(cfg, value)
    _check_rules(value)
    _check_data_init(value)
    _check_optimizer(value)
    _check_schedule(value)
    if machine:
        _check_devices(value)
    if files:
        _check_data_files(value)


def _locate(key: str, target: Any) -> Any:
    """The class or function a `_target_` names (quietly: Hydra's own lookup logs its failures)."""
    parts = str(target).split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for part in parts[split:]:
                found = getattr(found, part)
        except AttributeError:
            break
        if callable(found):
            return found
        break
    raise _error(key, target, "must name an importable class, e.g. torch.optim.Adam")


def _check_known_keys(cfg: DictConfig, value: Callable[[str], Any]) -> None:
    """Every key of a `_target_` node is an argument of what it names; plain sections hold only
    their own keys (`+prior.num_compnents=3` would otherwise fail deep inside instantiate)."""
    for section, keys in SECTIONS.items():
        node = OmegaConf.select(cfg, section, default=None, throw_on_resolution_failure=False)
        for key in node.keys() if isinstance(node, DictConfig) else ():
            if key not in keys:
                raise _error(f"{section}.{key}", value(f"{section}.{key}"), f"{section} has the keys {', '.join(keys)}")

    def targets(node: DictConfig, prefix: str):
        for key in node.keys():  # noqa: SIM118 - iterating a DictConfig skips keys set to ???
            child = node._get_node(key)
            if isinstance(child, DictConfig) and key != "hydra":
                if "_target_" in child:
                    yield f"{prefix}{key}", child
                yield from targets(child, f"{prefix}{key}.")

    for path, node in targets(cfg, ""):
        target = _locate(f"{path}._target_", value(f"{path}._target_"))
        if path == "optimizer" and not (inspect.isclass(target) and issubclass(target, torch.optim.Optimizer)):
            raise _error(
                f"{path}._target_",
                value(f"{path}._target_"),
                "must name a torch.optim.Optimizer, e.g. torch.optim.Adam",
            )
        parameters = inspect.signature(target).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            continue
        names = [name for name in parameters if name not in ("self", "params", "args", "kwargs")]
        for key in node.keys():  # noqa: SIM118 - iterating a DictConfig skips keys set to ???
            if str(key).startswith("_"):
                continue
            if path == "trainer" and key in TRAINER_RESERVED:
                raise _error(f"trainer.{key}", value(f"trainer.{key}"), "vaelab sets it itself; remove the key")
            if key not in names:
                name = value(f"{path}._target_")
                takes = "it takes " + ", ".join(names) if len(names) <= 12 else f"see help({name}) for its arguments"
                raise _error(f"{path}.{key}", value(f"{path}.{key}"), f"{name} has no argument {key} ({takes})")


def _check_rules(value: Callable[[str], Any]) -> None:
    """Rules that involve more than one key."""
    for low, high, strict in ORDERED:
        a, b = value(low), value(high)
        if a is None or b is None or (high.startswith("trainer.") and b == -1):
            continue
        if a > b or (strict and a == b):
            raise _error(low, a, f"must be {'<' if strict else '<='} {high} ({b})")
    for key, reference in SAME_AS.items():
        if value(key) is not None and value(key) != value(reference):
            raise _error(key, value(key), f"must equal {reference} ({value(reference)!r})")
    likelihood = value("decoder.likelihood")
    levels, data_min, data_max = value("decoder.num_levels"), value("dataset.input_min"), value("dataset.input_max")
    if value("dataset.binarize") is False and data_max != 255:
        raise _error(
            "dataset.binarize",
            False,
            f"with dataset.input_max={data_max}: grey levels run 0..255, so leave dataset.input_max at 255 "
            "(dataset.binarize=false sets it, and the likelihood over 256 levels)",
        )
    if likelihood == "categorical" and not (is_int(levels) and levels >= 2):
        raise _error("decoder.num_levels", levels, "must be an integer >= 2")
    if likelihood == "categorical" and data_max is not None and (data_min < 0 or levels < data_max + 1):
        raise _error(
            "decoder.num_levels",
            levels,
            f"must be >= {data_max + 1} for data with values "
            f"{data_min}..{data_max} (a categorical decoder has one level per value 0..num_levels-1)",
        )
    if likelihood == "discretized_logistic" and data_max is not None and (data_min != 0 or levels != data_max + 1):
        raise _error(
            "decoder.num_levels",
            levels,
            f"must be {data_max + 1} for data with values {data_min}..{data_max} "
            "(a discretized logistic has one level per value 0..num_levels-1)",
        )
    if likelihood == "continuous_bernoulli" and data_max is not None and (data_min, data_max) != (0, 1):
        raise _error(
            "decoder.likelihood",
            likelihood,
            f"a likelihood for values {data_min}..{data_max} (continuous_bernoulli needs data in [0, 1])",
        )
    if likelihood == "bernoulli" and data_max is not None and (data_min, data_max) != (0, 1):
        raise _error(
            "decoder.likelihood",
            likelihood,
            f"categorical for data with values {data_min}..{data_max} (bernoulli needs data in 0..1)",
        )
    for net in ("encoder", "decoder"):  # the convolutional networks need the data's image shape
        target = str(value(f"{net}._target_"))
        shape = value(f"{net}.image_shape")
        if target.startswith("vaelab.nets.Conv") and (shape is None or min(shape[:2]) < 2):
            raise _error(
                f"{net}.image_shape",
                shape,
                f"{target} needs images, at least 2x2 pixels: set dataset.image_shape (flat vectors are [1, D])",
            )
    channels = value("encoder.channels")
    for key, what in (("encoder.kernels", "kernel size"), ("encoder.strides", "stride")):
        if channels is not None and value(key) is not None and len(value(key)) != len(channels):
            raise _error(key, value(key), f"must have one {what} per entry of encoder.channels ({len(channels)})")
    shape, input_dim = value("dataset.image_shape"), value("dataset.input_dim")
    if shape is not None and input_dim is not None and math.prod(shape) != input_dim:
        raise _error("dataset.image_shape", shape, f"must hold dataset.input_dim ({input_dim}) pixels")
    bottom = value("model.bottom_dim") if value("model.name") == "hvae" else 0  # z1's dimensions
    if value("eval.exact") is True and value("latent_dim") + (bottom or 0) > 2:
        levels = f" + model.bottom_dim={bottom}" if bottom else ""
        raise _error(
            "eval.exact",
            True,
            f"with latent_dim={value('latent_dim')}{levels}: the quadrature needs at most 2 latent dimensions "
            "in all (auto skips it)",
        )
    if value("prior.learnable_inputs") is False and value("prior.init") != "data":
        raise ConfigError(
            f"prior.learnable_inputs=false is not allowed with prior.init={value('prior.init')}: "
            "fixed pseudo-inputs must be training inputs, prior.init=data"
        )
    if value("schedule.name") == "alternating":  # two optimizers stepped by hand (Lightning's manual optimization)
        if "ddp" in str(value("trainer.strategy") or ""):
            raise _error(
                "schedule.name",
                "alternating",
                "with a ddp strategy: alternating updates run in one process (trainer=cpu or gpu)",
            )
        if value("trainer.gradient_clip_val"):
            raise _error(
                "trainer.gradient_clip_val",
                value("trainer.gradient_clip_val"),
                "must be null with schedule=alternating",
            )
        if (value("trainer.accumulate_grad_batches") or 1) > 1:
            raise _error(
                "trainer.accumulate_grad_batches",
                value("trainer.accumulate_grad_batches"),
                "must be 1 with schedule=alternating",
            )
    if str(value("prior._target_") or "").endswith("ExemplarPrior"):
        if value("prior.init") != "data":
            raise _error("prior.init", value("prior.init"), "prior=exemplar's exemplars are the training inputs: data")
        if (count := value("prior.num_exemplars")) is not None and not is_positive_int(count):
            raise _error("prior.num_exemplars", count, "must be a positive integer, or null for all exemplars")
    if str(value("prior._target_") or "").endswith("FlowPrior") and value("latent_dim") < 2:
        raise _error(
            "latent_dim", value("latent_dim"), "prior=flow needs latent_dim >= 2 (its coupling layers split z in two)"
        )


def _check_devices(value: Callable[[str], Any]) -> None:
    """A GPU trainer needs GPUs: as many as `trainer.devices` asks for."""
    accelerator, devices, precision = value("trainer.accelerator"), value("trainer.devices"), value("trainer.precision")
    if accelerator in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise _error(
                "trainer.accelerator",
                accelerator,
                "this machine has no CUDA GPU (torch.cuda.is_available() is false); use trainer=cpu",
            )
        count = torch.cuda.device_count()
        if (is_int(devices) and devices > count) or (isinstance(devices, list) and max(devices) >= count):
            raise _error(
                "trainer.devices", devices, f"this machine has {count} CUDA GPU(s): at most {count}, or -1 for all"
            )
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise _error("trainer.accelerator", accelerator, "this machine has no Apple MPS device; use trainer=cpu")
    if accelerator == "cpu" and not (is_positive_int(devices) or devices == "auto"):
        raise _error("trainer.devices", devices, 'on a CPU: a positive number of processes or "auto"')
    if accelerator == "cpu" and precision in ("16-mixed", "16", 16):
        raise _error(
            "trainer.precision", precision, "on a CPU: 32-true, 64-true, bf16-mixed or bf16-true (16-mixed needs a GPU)"
        )


def _check_data_files(value: Callable[[str], Any]) -> None:
    """The data folder and files exist (the datamodule class's `check_files`; nothing is read)."""
    datamodule = _locate("dataset.datamodule._target_", value("dataset.datamodule._target_"))
    if value("dataset.datamodule.root") is not None and hasattr(datamodule, "check_files"):
        datamodule.check_files(value("dataset.datamodule.root"))


def _check_data_init(value: Callable[[str], Any]) -> None:
    """A data-initialised prior copies K training examples: there must be K of them, as known
    before reading the data from the datamodule class's `SPLIT_SIZES` and `limit`."""
    if value("prior.init") != "data" or value("dataset.datamodule._target_") is None:
        return
    if value("prior.num_components") is None:  # a prior that keeps every training input (exemplar)
        return
    datamodule = _locate("dataset.datamodule._target_", value("dataset.datamodule._target_"))
    sizes = getattr(datamodule, "SPLIT_SIZES", None)
    known = [sizes["train"]] if sizes and value("dataset.datamodule.check_sizes") is not False else []
    bounds = known + ([value("dataset.datamodule.limit")] if value("dataset.datamodule.limit") else [])
    if bounds and value("prior.num_components") > min(bounds):
        raise _error(
            "prior.num_components",
            value("prior.num_components"),
            f"at most {min(bounds)} with prior.init=data "
            f"(the training split has {min(bounds)} examples to copy); or prior.init=random",
        )


def _check_schedule(value: Callable[[str], Any]) -> None:
    """A schedule other than joint optimises the prior's parameters on their own: the prior
    (built here, without data) must have some."""
    name = value("schedule.name")
    if name in (None, "joint") or value("prior._target_") is None:
        return
    from hydra.utils import instantiate  # here: only a non-joint schedule pays for building the prior

    try:
        prior = instantiate(value("prior"))
    except Exception:  # noqa: BLE001 - the prior's own errors are reported where it is built
        return
    if not any(p.requires_grad for p in prior.parameters()):
        raise _error("schedule", name, "needs a prior with parameters to train; this one has none (use schedule=joint)")


def _check_optimizer(value: Callable[[str], Any]) -> None:
    """Build the optimizer once on a dummy parameter: torch checks its own arguments (betas,
    eps, momentum, ...), here rather than after the data are loaded."""
    target = value("optimizer._target_")
    if target is None:
        return
    optimizer = _locate("optimizer._target_", target)  # a torch.optim.Optimizer (_check_known_keys)
    kwargs = {key: val for key, val in value("optimizer").items() if not key.startswith("_")}
    try:
        optimizer([torch.zeros(1, requires_grad=True)], **kwargs)
    except Exception as error:  # noqa: BLE001 - whatever the optimizer says about its arguments
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise _error("optimizer", kwargs, f"{target} rejects it: {reason}") from None
