"""Shared fixtures: the real Hydra config, composed and clamped for tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SIX_PRIORS = ["standard", "mog", "vamp", "gtm", "gtm_vamp", "flow"]  # the blog post's; experiment=compare_priors
NEW_PRIORS = ["maf", "nsf", "lars", "vamp_data"]  # issue 12: the autoregressive and resampled priors, fixed vamp
PRIORS = SIX_PRIORS + NEW_PRIORS


def compose_config(*overrides: str):
    """The composed `conf/train.yaml` with overrides, as `python train.py` would see it."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.fixture(autouse=True, scope="session")
def quality_cache(tmp_path_factory):
    """The sample-quality classifiers (eval.quality.cache_dir = $VAELAB_CACHE) of every test, and of the
    processes they start, go to one temporary folder: trained once per session, never in the home folder."""
    folder = tmp_path_factory.mktemp("vaelab_cache")
    previous = os.environ.get("VAELAB_CACHE")
    os.environ["VAELAB_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("VAELAB_CACHE", None)
    else:
        os.environ["VAELAB_CACHE"] = previous


@pytest.fixture
def make_cfg(tmp_path):
    """compose_config with the fast trainer and a temporary run directory."""

    def make(*overrides: str):
        return compose_config("trainer=fast", f"run_dir={tmp_path / 'run'}", *overrides)

    return make
