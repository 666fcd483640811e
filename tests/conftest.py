"""Shared fixtures: the real Hydra config composed for tests, one folder for the quality classifiers,
the short trained runs that many tests read (each trained once when first needed; a test that
changes one works on a copy of it), and the command-line work started when the test run starts
(`helpers.early`)."""

from __future__ import annotations

import os

import pytest
import torch
from helpers import CONF, NEW_PRIORS, PICTURE_RUN, PRIORS, ROOT, SIX_PRIORS, compose_config
from helpers.early import Early, has_early_work
from helpers.runs import save_untrained_run

import vaelab

# The names tests import with `from conftest import ...` (the same as `from helpers import ...`).
__all__ = ["CONF", "NEW_PRIORS", "PRIORS", "ROOT", "SIX_PRIORS", "compose_config"]


@pytest.fixture(autouse=True, scope="session")
def quality_cache(tmp_path_factory):
    """The sample-quality classifiers (eval.quality.cache_dir = $VAELAB_CACHE) of every test, and of the
    processes they start, go to one temporary folder: trained once per test run, never in the home folder."""
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules with early work run last, the others first (each in its own order)."""
    items.sort(key=has_early_work)


@pytest.fixture(scope="module")
def one_thread():
    """For modules of small tensors: one thread is faster, and does not stall on busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def early(request, tmp_path_factory, quality_cache):
    """The early work of every module that has tests in this run, started now in the order its
    tests will run (`helpers.early`), with the quality cache set for their processes;
    `early.result(work)` waits for one. While there is early work, this process uses one torch thread."""
    work = Early(tmp_path_factory)
    modules = dict.fromkeys(item.module for item in request.session.items if has_early_work(item))
    work.start(function for module in modules for function in module.EARLY)
    threads = torch.get_num_threads()
    if modules:  # the tests in this process take one core, the commands the other
        torch.set_num_threads(1)
    yield work
    torch.set_num_threads(threads)
    work.close()


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory, quality_cache):
    """A standard-prior run on the digits, trained for 5 whole epochs and evaluated with S = 100,
    the exact likelihood and the sample quality: (run directory, metrics, config)."""
    run_dir = tmp_path_factory.mktemp("digits") / "run"
    cfg = compose_config(
        "trainer=fast",
        "trainer.max_epochs=5",
        "trainer.limit_train_batches=1.0",
        "figures.enabled=false",
        "eval.num_samples=100",
        f"run_dir={run_dir}",
    )
    metrics = vaelab.run(cfg)
    return run_dir, metrics, cfg


@pytest.fixture(scope="session")
def joint_run(tmp_path_factory, quality_cache):
    """A standard-prior run trained until both latent units are active and q(z) is no longer close
    to N(0, I), for post-hoc refits: 15 full epochs at lr 1e-2 (at the default 1e-3 the posterior
    has not yet left the prior by then, the standard prior is all but optimal, and a refit has
    nothing to gain). Refits of it write under its posthoc/ folder."""
    run_dir = tmp_path_factory.mktemp("joint") / "run"
    cfg = compose_config(
        "prior=standard",
        f"run_dir={run_dir}",
        "trainer.max_epochs=15",
        "optimizer.lr=1e-2",
        "trainer.enable_progress_bar=false",
        "seed=0",
        "figures.enabled=false",
        "eval.num_samples=10",
        "eval.num_latent_samples=1000",
        "eval.exact=false",
    )
    vaelab.run(cfg)
    return run_dir


@pytest.fixture(scope="session")
def mog_run(tmp_path_factory):
    """A short run of a mixture prior with 4 components, for what the experiment trackers show:
    (run directory, metrics)."""
    run_dir = tmp_path_factory.mktemp("mog")
    cfg = compose_config(
        "trainer=fast",
        "eval.num_samples=10",
        "eval.exact=false",
        "eval.num_latent_samples=200",
        "eval.quality.enabled=false",
        "figures.enabled=false",
        "prior=mog",
        "prior.num_components=4",
        f"run_dir={run_dir}",
    )
    return run_dir, vaelab.run(cfg)


@pytest.fixture(scope="session")
def prior_run(tmp_path_factory, quality_cache):
    """`prior_run(prior)`: a run of that prior with every picture drawn at each of its 3 epochs and
    the sample quality evaluated (`helpers.PICTURE_RUN`), trained on first use: (run directory, metrics)."""
    runs: dict[str, tuple] = {}

    def train(prior: str) -> tuple:
        if prior not in runs:
            run_dir = tmp_path_factory.mktemp(prior) / "run"
            cheap = ["prior.eval_samples=10"] if prior == "latent_vae" else []  # its density, drawn every epoch
            runs[prior] = (
                run_dir,
                vaelab.run(compose_config(*PICTURE_RUN, f"prior={prior}", *cheap, f"run_dir={run_dir}")),
            )
        return runs[prior]

    return train


@pytest.fixture
def saved_run(tmp_path):
    """A run directory with config.yaml and an untrained model's checkpoint, made without training:
    (run directory, checkpoint)."""
    run_dir = tmp_path / "run"
    return run_dir, save_untrained_run(run_dir)
