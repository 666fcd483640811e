"""Post-hoc fits after a training run: `posthoc=[mog, flow]` on the command line, or in a sweep."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, ListConfig
from pytorch_lightning.utilities import rank_zero_only

from vaelab import rundir
from vaelab.errors import ConfigError
from vaelab.files import ATTEMPTS, atomic_write_json, set_aside
from vaelab.posthoc.fit import fit
from vaelab.rundir import RunDir
from vaelab.training.signals import TrainingInterrupted

__all__ = ["prior_options", "refit_job", "requested"]

log = logging.getLogger(__name__)


def requested(cfg: DictConfig) -> list[str]:
    """The prior options `cfg.posthoc` asks to refit (null, a name or a list of names), each checked
    against the `prior` group's options, before training starts."""
    value = cfg.get("posthoc")
    names = (
        []
        if value is None
        else [value]
        if isinstance(value, str)
        else list(value)
        if isinstance(value, (list, ListConfig))
        else None
    )
    if names is None or not all(isinstance(name, str) and name for name in names):
        raise ConfigError(f"posthoc={value!r} is not allowed: must be null, a prior option or a list of them")
    options = prior_options()
    for name in names:
        if options and name not in options:
            raise ConfigError(f"posthoc={name} is not allowed: choose prior options from {', '.join(options)}")
    return names


def prior_options() -> list[str]:
    """The `prior` group's options: Hydra's search path inside an app (with --config-dir), else conf/prior/."""
    if GlobalHydra.instance().is_initialized():
        return sorted(GlobalHydra.instance().config_loader().get_group_options("prior"))
    return sorted(path.stem for path in (rundir.conf_dir() / "prior").glob("*.yaml"))


def refit_job(cfg: DictConfig) -> list[str]:
    """The refits `cfg.posthoc` asks for, after the run in `cfg.run_dir` has been trained, each
    into `<run>/posthoc/<prior>`. A refit already done (its `posthoc.json`) is skipped, so running a
    sweep again does not refit twice; an unfinished or failed one is set aside and done again. A
    failure is written to that refit's `failed.json` and does not stop the others. Returns the
    names that failed."""
    if rank_zero_only.rank != 0:  # a DDP run's other processes: the refit is process 0's, on one device
        return []
    run_dir, failed = Path(cfg.run_dir), []
    for name in requested(cfg):
        out = RunDir(run_dir).posthoc(name)
        if RunDir(out).posthoc_record.is_file():
            log.info("post-hoc %s of %s was fitted earlier: skipped", name, run_dir.name)
            continue
        if out.is_dir() and any(path.name != ATTEMPTS for path in out.iterdir()):
            log.info("post-hoc %s: the unfinished attempt is in %s; fitting again", name, set_aside(out))
        try:
            fit(run_dir, name, out=out)
        except TrainingInterrupted:
            raise  # a signal stops the sweep, as during training; running it again fits this prior afresh
        except Exception as error:  # noqa: BLE001 - one refit's failure is its own
            failed.append(name)
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(RunDir(out).failed, {"error": type(error).__name__, "message": str(error)})
            log.error("post-hoc %s of %s failed: %s: %s", name, run_dir.name, type(error).__name__, error)
    return failed
