"""Multirun sweeps: one job per (prior, seed, …), failures kept to their job, a report at the end.

`vaelab-train -m prior=standard,mog,vamp,gtm,gtm_vamp,flow` runs each job through `run_job`,
which never lets an exception escape: Hydra's sweepers stop the whole sweep at the first failed
job, so a failure is written to `failed.json` in the job's directory instead and the next job
runs. When every job has ended, the Hydra callback `SweepReport` (registered in conf/train.yaml)
writes the comparison report of `vaelab.reports` into the sweep directory and, if any job failed,
ends the process with exit status 1.

With `posthoc=[mog, flow]` each job then refits those priors to its trained model, encoder and
decoder frozen (`vaelab.posthoc.jobs.refit_job`, into `<job>/posthoc/<prior>`); a refit that is done is
not done again when the sweep runs again, and its failure is its own, like a job's.

Hydra imports this module when it starts (the `SweepReport` callback), so torch, the training code
and the reports are imported inside the functions that use them.

Under the joblib launcher each job also sets its torch threads to cores // parallel jobs, so that
two jobs on two cores do not each start two threads.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from vaelab import rundir
from vaelab.errors import ConfigError
from vaelab.files import atomic_write_json, set_aside
from vaelab.rundir import RunDir, read_json

__all__ = ["SweepReport", "in_multirun", "objective", "run_job", "threads_per_job"]

log = logging.getLogger(__name__)


def in_multirun() -> bool:
    """True inside a job of `python train.py -m …` (any launcher)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def parallel_jobs(n_jobs: int | None, cores: int) -> int:
    """How many jobs joblib runs at once for its `n_jobs` (negative counts back from all cores)."""
    if n_jobs is None or n_jobs == 0:
        return 1
    return max(1, cores + 1 + n_jobs) if n_jobs < 0 else n_jobs


def threads_per_job(n_jobs: int | None, cores: int) -> int:
    """torch threads for one of `n_jobs` parallel jobs on `cores` cores: cores // parallel jobs."""
    return max(1, cores // parallel_jobs(n_jobs, cores))


def joblib_threads(launcher: DictConfig) -> int | None:
    """Threads per job under Hydra's joblib launcher; None for any other launcher."""
    if "JoblibLauncher" not in str(launcher.get("_target_", "")):
        return None
    import joblib  # present wherever the joblib launcher is

    return threads_per_job(launcher.get("n_jobs"), joblib.cpu_count())


def objective(metrics: dict[str, Any]) -> float:
    """What a job returns to Hydra: its best validation loss, never a test-set number; +inf without a
    finite one (a failed job), the worst value for a search that minimises (Optuna refuses NaN)."""
    value = metrics.get("best_val_loss")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.inf


def run_job(cfg: DictConfig, run: Callable[[DictConfig], dict[str, Any]] | None = None) -> float:
    """One job of a sweep: `run(cfg)` (default `vaelab.run`) with any exception recorded in the
    job's `failed.json` and logged rather than raised. Returns the job's objective, its best
    validation loss (+inf for a failed job): what a sweeper that searches (Optuna) minimises.

    Running the same sweep again (same `hydra.sweep.dir`) skips the jobs that completed, resumes
    the interrupted ones from their `last.ckpt` and runs the failed ones again (their files are
    set aside in `attempts/<n>/`). A signal stops the job (`interrupted.json`) and the sweep, whose
    process exits with 128 + the signal number."""
    import torch  # here: the module is imported by the command line before any job runs

    if run is None:
        from vaelab.training.fit import run
    job = RunDir(cfg.run_dir)
    job_dir = job.path
    job_dir.mkdir(parents=True, exist_ok=True)
    previous = job.attempt()
    record = read_json(job.job) or {}
    if previous == "completed":
        log.info("job %s completed in an earlier run of this sweep: skipped", job_dir.name)
        _refit(cfg)  # the post-hoc fits an earlier run of the sweep did not finish
        return objective(read_json(job.metrics) or {})
    if previous == "killed" and job.last.is_file():
        cfg.resume = str(job.last)  # a hard kill left no interrupted.json; the latest checkpoint will do
        mode = "resumed"
    elif previous in ("failed", "killed"):
        log.info(
            "job %s %s in an earlier run of this sweep: its files are in %s; running it again",
            job_dir.name,
            previous,
            set_aside(job_dir, keep=(rundir.HYDRA, rundir.JOB, rundir.LOG)),
        )
        mode = "fresh"
    else:
        mode = "resumed" if previous == "interrupted" else "fresh"
    threads = joblib_threads(HydraConfig.get().launcher)
    if threads is not None:
        torch.set_num_threads(threads)
    started = time.time()
    record.update(
        pid=os.getpid(),
        host=socket.gethostname(),
        torch_threads=torch.get_num_threads(),
        started=started,
        status="running",
        starts=record.get("starts", []) + [{"time": started, "mode": mode}],
    )
    atomic_write_json(job.job, record)
    from vaelab.training.signals import TrainingInterrupted

    try:
        if "ddp" in str(cfg.trainer.get("strategy", "")):
            strategy = cfg.trainer.strategy
            raise ConfigError(f"trainer.strategy={strategy} is not allowed in a multirun: sweep single-device jobs")
        if cfg.get("posthoc"):  # the post-hoc priors' names, checked before training
            from vaelab.posthoc.jobs import requested

            requested(cfg)
        metrics = run(cfg)
        status, result = "completed", objective(metrics)
    except TrainingInterrupted as error:
        record.update(finished=time.time(), status="interrupted")
        atomic_write_json(job.job, record)
        sys.exit(error.exit_status)  # the sweep stops here; running it again resumes this job
    except Exception as error:  # noqa: BLE001 - any failure belongs to this job only
        status, result = "failed", math.inf
        failure = {"error": type(error).__name__, "message": str(error), "traceback": traceback.format_exc()}
        atomic_write_json(job.failed, failure)
        log.error("job failed, the sweep goes on: %s: %s (details in %s)", type(error).__name__, error, job.failed)
    record.update(finished=time.time(), status=status)
    atomic_write_json(job.job, record)
    if status == "completed":
        _refit(cfg)
    return result


def _refit(cfg: DictConfig) -> None:
    """The post-hoc priors `posthoc=` asks for, fitted to the job's trained model in
    `<job>/posthoc/<prior>` (`vaelab.posthoc.jobs.refit_job`: done ones skipped, failures written to
    their own `failed.json` and reported); a signal stops the sweep as during training."""
    if not cfg.get("posthoc"):
        return
    from vaelab.posthoc.jobs import refit_job
    from vaelab.training.signals import TrainingInterrupted

    try:
        refit_job(cfg)
    except TrainingInterrupted as error:
        sys.exit(error.exit_status)
    except Exception as error:  # noqa: BLE001 - e.g. a bad posthoc= value in a job that completed earlier
        log.error("post-hoc fits of job %s: %s: %s", Path(cfg.run_dir).name, type(error).__name__, error)


class SweepReport(Callback):
    """Hydra callback: at the end of a multirun, write the comparison report into the sweep
    directory; exit with status 1 when a job failed (`exit_on_failure`).

    The exit is a `sys.exit` because Hydra turns exceptions raised by callbacks into warnings.
    """

    def __init__(self, enabled: bool = True, exit_on_failure: bool = True, reference: str = "standard"):
        self.enabled, self.exit_on_failure, self.reference = enabled, exit_on_failure, reference

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.enabled:
            return
        sweep_dir = Path(str(config.hydra.sweep.dir))
        from vaelab.reports import write_report

        try:
            report = write_report(sweep_dir, reference=self.reference)
        except Exception as error:  # noqa: BLE001 - a broken report must not hide failed jobs
            log.error("could not write the comparison report for %s: %s", sweep_dir, error)
            failed = [p.parent.name for p in sweep_dir.glob(f"*/{rundir.FAILED}")]
            if failed and self.exit_on_failure:
                sys.exit(f"error: {len(failed)} job(s) of the sweep failed: {', '.join(sorted(failed))}")
            return
        print(report.summary())
        if report.failed and self.exit_on_failure:
            names = ", ".join(job.name for job in report.failed)
            sys.exit(f"error: {len(report.failed)} of {len(report.jobs)} jobs failed ({names}); see {report.markdown}")
