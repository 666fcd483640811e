"""`vaelab-train` (also `python train.py` in the checkout): train one VAE, or sweep with `-m`.

    vaelab-train prior=vamp latent_dim=2          # one run: outputs/runs/<time>_vamp/
    vaelab-train -m prior=standard,vamp seed=1,2  # a sweep, with a comparison report at its end
    vaelab-train resume=outputs/runs/<run>        # continue an interrupted run
    vaelab-train posthoc=mog,flow                 # then refit these priors, encoder and decoder frozen
    vaelab-train --cfg job                        # print the composed config (about a second)
    vaelab-train --help                           # the config groups and every key

The config is Hydra's, composed from `conf/train.yaml` (`vaelab.rundir.conf_dir`). This module
imports nothing heavy (torch, Lightning) until a job runs, so `--cfg job` and `--help` are quick.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import hydra
from omegaconf import DictConfig

from vaelab.errors import VaelabError
from vaelab.overrides import check_overrides, posthoc_argv
from vaelab.rundir import conf_dir
from vaelab.training.resume import resume_argv

__all__ = ["main", "task"]


def task(cfg: DictConfig) -> float:
    """One job: train, test and write the run directory, then the post-hoc refits it asks for.
    Returns the best validation loss (the objective of a search). A vaelab error ends the process
    with one line; a signal with 128 + its number."""
    # Imported when a job runs, not with the module: `--cfg job` and `--help` need none of it.
    from vaelab.cli import sweep

    # torch, not Lightning: a bad value is answered in a moment
    from vaelab.config import check_config, complete_dataset
    from vaelab.errors import ConfigError

    if sweep.in_multirun():  # a failed job is recorded in its directory; the other jobs go on
        return sweep.run_job(cfg)
    try:
        complete_dataset(cfg)  # own data: the keys its images or arrays decide
        check_config(cfg)  # before Lightning and the training code are imported (but for own data)
    except ConfigError as error:
        _exit_before_any_work(error)

    from vaelab.posthoc.jobs import refit_job, requested
    from vaelab.training.fit import run
    from vaelab.training.signals import TrainingInterrupted

    try:
        requested(cfg)  # posthoc=[mog, ...]: the names, checked before training
        metrics = run(cfg)
        failed = refit_job(cfg) if cfg.get("posthoc") else []
    except ConfigError as error:
        _exit_before_any_work(error)
    except VaelabError as error:
        sys.exit(f"error: {error}")
    except TrainingInterrupted as error:
        sys.exit(error.exit_status)
    if failed:
        sys.exit(f"error: the post-hoc fit of {', '.join(failed)} failed (see {cfg.run_dir}/posthoc/*/failed.json)")
    return sweep.objective(metrics)


def _exit_before_any_work(error: VaelabError) -> NoReturn:
    """A job rejected before any work: its one line, and no run directory left behind."""
    from hydra.core.hydra_config import HydraConfig

    from vaelab.rundir import remove_unused_run_dir

    hydra = HydraConfig.get()
    remove_unused_run_dir(hydra.runtime.output_dir, f"{hydra.job.name}.log")
    sys.exit(f"error: {error}")


def main(argv: list[str] | None = None) -> None:
    """The command line as Hydra's, after two rewrites and one check: `resume=<run>` becomes the
    run's own command line, `posthoc=a,b` a list (not a sweep), and a single run's overrides are
    composed first, so that a mistyped key or option is one line rather than Hydra's report."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        config_dir = conf_dir()
        argv = resume_argv(posthoc_argv(argv))
        if not any(arg.startswith("-") for arg in argv):  # a single run; flags (-m, --cfg ...) go to Hydra
            check_overrides(argv, config_dir)
    except VaelabError as error:
        sys.exit(f"error: {error}")
    sys.argv[1:] = argv
    hydra.main(version_base="1.3", config_path=str(config_dir), config_name="train")(task)()


if __name__ == "__main__":
    main()
