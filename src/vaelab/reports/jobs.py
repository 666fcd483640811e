"""The jobs of a sweep as the report reads them back from their directories: what each ran, with
which overrides and seed, and how it ended. A job's post-hoc fits (`<job>/posthoc/<name>/`) are
jobs too. No torch: reading a sweep needs none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaelab.overrides import key_of
from vaelab.rundir import RunDir, read_json, read_yaml

__all__ = ["COMPLETED", "FAILED", "INTERRUPTED", "MISSING", "Job", "collect", "read_job", "read_posthoc", "select"]

COMPLETED, FAILED, INTERRUPTED, MISSING = "completed", "failed", "interrupted", "no result"


@dataclass
class Job:
    """One job directory of a sweep."""

    dir: Path
    num: int
    prior: str
    seed: Any
    overrides: dict[str, str]  # key → the override as typed, e.g. "optimizer.lr" → "optimizer.lr=1e30"
    status: str
    dataset: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    source: Job | None = None  # a post-hoc fit (`<job>/posthoc/<prior>/`): the job whose model it refitted

    @property
    def name(self) -> str:
        return self.dir.name if self.source is None else f"{self.source.dir.name}/posthoc/{self.dir.name}"


def select(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def read_job(job_dir: Path) -> Job | None:
    """The job in `job_dir`, or None when the folder is not a job (no config written)."""
    run = RunDir(job_dir)
    hydra = read_yaml(run.hydra_record, strict=False) or {}
    config = read_yaml(run.config, strict=False) or read_yaml(run.hydra_config, strict=False)
    if config is None and not hydra:
        return None
    config = config or {}
    overrides = {key_of(item): item for item in select(hydra, "hydra.overrides.task") or []}
    choices = select(hydra, "hydra.runtime.choices") or {}
    prior = choices.get("prior") or str(select(config, "prior._target_") or "?").rsplit(".", 1)[-1]
    num = select(hydra, "hydra.job.num")
    num = num if isinstance(num, int) else -1
    job = Job(job_dir, num, prior, config.get("seed"), overrides, MISSING, choices.get("dataset"), config=config)
    metrics = read_json(run.metrics, strict=False)
    failure = read_json(run.failed, strict=False)
    interrupted = read_json(run.interrupted, strict=False)
    if failure is not None:
        job.status, job.error = FAILED, f"{failure.get('error', 'Error')}: {failure.get('message', '')}"
    elif metrics is not None:
        job.status, job.metrics = COMPLETED, metrics
    elif interrupted is not None:
        job.status = INTERRUPTED
        job.error = (
            f"stopped by {interrupted.get('signal')} at epoch {interrupted.get('epoch')}, step "
            f"{interrupted.get('step')}; run the sweep command again to resume it"
        )
    else:
        job.error = "no metrics.json or failed.json: the job did not finish (killed, crashed, or still running)"
    return job


def read_posthoc(job: Job) -> list[Job]:
    """The post-hoc fits of a job (`<job>/posthoc/<name>/`, `vaelab.posthoc`), each a job of its own
    labelled `<prior> → <name> (post-hoc)`, with the job's seed and overrides, so that the fits of
    all seeds make one row."""
    fits = []
    for path in sorted(p for p in RunDir(job.dir).posthoc().glob("*") if p.is_dir()):
        fit_dir = RunDir(path)
        record, failure = read_json(fit_dir.posthoc_record, strict=False), read_json(fit_dir.failed, strict=False)
        fit = Job(
            path,
            job.num,
            f"{job.prior} → {path.name} (post-hoc)",
            job.seed,
            job.overrides,
            MISSING,
            job.dataset,
            config=read_yaml(fit_dir.config, strict=False) or {},
            source=job,
        )
        if failure is not None:
            fit.status, fit.error = FAILED, f"{failure.get('error', 'Error')}: {failure.get('message', '')}"
        elif record is not None:
            fit.status, fit.metrics = COMPLETED, read_json(fit_dir.metrics, strict=False) or record.get("after", {})
        else:
            fit.error = "no posthoc.json or failed.json: the post-hoc fit did not finish (killed, or still running)"
        fits.append(fit)
    return fits


def collect(sweep_dir: str | Path) -> list[Job]:
    """Every job of the sweep, in job-number order, each followed by its post-hoc fits."""
    folders = [path for path in sorted(Path(sweep_dir).iterdir()) if path.is_dir() and not path.name.startswith(".")]
    jobs = sorted((job for job in map(read_job, folders) if job is not None), key=lambda job: (job.num, job.dir.name))
    return [each for job in jobs for each in (job, *read_posthoc(job))]
