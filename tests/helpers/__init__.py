"""What the tests share: the checkout's paths, the real Hydra config composed with overrides, the
priors by name, and the settings that keep a run short where the test is not about them."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.config_loader_impl import ConfigLoaderImpl  # the step of compose that applies values
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig

pytest.register_assert_rewrite("helpers.runs")  # its asserts report like a test's

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
SIX_PRIORS = ["standard", "mog", "vamp", "gtm", "gtm_vamp", "flow"]  # the blog post's; experiment=compare_priors
NEW_PRIORS = ["maf", "nsf", "lars", "vamp_data", "exemplar", "latent_vae", "energy"]  # and the post's later ones
PRIORS = SIX_PRIORS + NEW_PRIORS

# An evaluation that takes a fraction of a second: for runs whose test is about something else.
CHEAP_EVAL = ("eval.num_samples=10", "eval.num_latent_samples=200", "eval.exact=false", "eval.quality.enabled=false")
# A short run (trainer=fast: 3 epochs of 4 batches) with that evaluation and no pictures.
SHORT_RUN = ("trainer=fast", "figures.enabled=false", *CHEAP_EVAL)
# A short run that draws every picture at each of its 3 epochs of 16 batches (after 4 the decoder's
# samples are still uniform grey) and evaluates the sample quality, which draws a picture too.
PICTURE_RUN = (
    "trainer=fast",
    "trainer.limit_train_batches=1.0",
    "figures.every_n_epochs=1",
    "eval.num_samples=10",
    "eval.num_latent_samples=1000",
    "eval.exact=false",
    "eval.quality.num_samples=200",
)


# Hydra's own logging and help configs: composed and then dropped by `compose` (a quarter of its time).
NO_HYDRA_EXTRAS = ("hydra/job_logging=none", "hydra/hydra_logging=none", "~hydra/help", "~hydra/hydra_help")


def compose_config(*overrides: str) -> DictConfig:
    """The composed `conf/train.yaml` with overrides, as `python train.py` would see it.

    Hydra composes the defaults list from the group overrides (`prior=vamp`), then applies the value
    overrides (`prior.init=data`) to the result. The first step is most of the time and the tests
    repeat few group choices, so it is done once per choice and the second applied to a copy."""
    parsed = PARSER.parse_overrides(list(overrides))
    groups = tuple(o.input_line for o in parsed if _is_group(o))
    cfg = copy.deepcopy(_compose_groups(groups))
    ConfigLoaderImpl._apply_overrides_to_config([o for o in parsed if not _is_group(o)], cfg)
    return cfg


PARSER = OverridesParser.create()


def _is_group(override: Override) -> bool:
    return "/" in override.key_or_group or (CONF / override.key_or_group).is_dir()


@functools.cache
def _compose_groups(groups: tuple[str, ...]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=[*NO_HYDRA_EXTRAS, *groups])
