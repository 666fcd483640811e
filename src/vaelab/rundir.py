"""The run directory: every file name in it, every lookup of its checkpoints, and where `conf/` is.

A run (`vaelab-train`, a sweep job, a post-hoc fit) writes one directory:

    config.yaml              the resolved config          .hydra/         Hydra's record of the command
    metrics.json             the test metrics, last       train.log       the console's lines
    checkpoints/best-NNN.ckpt  the best epoch's weights   checkpoints/last.ckpt  the whole training state
    interrupted.json         a signal stopped training    failed.json     a sweep job or refit failed
    job.json                 a sweep job's starts          posthoc/<prior>/  refits of this run's prior

Light on purpose (no torch): the commands and the reports read run directories before, or
without, importing torch.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from vaelab.errors import RunDirError

__all__ = [
    "CHECKOUT",
    "RunDir",
    "conf_dir",
    "find_checkpoint",
    "read_json",
    "read_yaml",
    "remove_unused_run_dir",
]

CONFIG = "config.yaml"
METRICS = "metrics.json"
INTERRUPTED = "interrupted.json"
FAILED = "failed.json"
JOB = "job.json"
LOG = "train.log"
HYDRA = ".hydra"
CHECKPOINTS = "checkpoints"
LAST = "last.ckpt"
BEST = "best-{epoch:03d}"  # Lightning's ModelCheckpoint filename pattern: best-042.ckpt
POSTHOC = "posthoc"
POSTHOC_RECORD = "posthoc.json"  # written last by a post-hoc fit: it is complete
QUALITY_FIGURE = "quality_vs_density.png"
LATENT_FIGURE = "latent.png"
SAMPLES_FIGURE = "samples.png"  # written at the end of training by vaelab.training.latent_figures ("{name}.png")

# The vaelab checkout of an editable install: the folder that holds conf/ and src/.
CHECKOUT = Path(__file__).resolve().parents[2]


def conf_dir() -> Path:
    """The config folder `vaelab-train` composes from: $VAELAB_CONF, else the checkout's `conf/`."""
    folder = Path(os.environ.get("VAELAB_CONF") or CHECKOUT / "conf").expanduser().resolve()
    if not (folder / "train.yaml").is_file():
        raise RunDirError(
            f"{folder}: no train.yaml: install vaelab from its checkout (pip install -e .) or point "
            "VAELAB_CONF at a copy of its conf/ folder"
        )
    return folder


def read_json(path: Path, strict: bool = True) -> Any:
    """The JSON in `path`, None if there is no such file; an unreadable one is a RunDirError
    naming it, or None with `strict=False` (a report skips what it cannot read)."""
    return _read(path, json.loads, strict)


def read_yaml(path: Path, strict: bool = True) -> Any:
    """As `read_json`, for YAML."""
    return _read(path, yaml.safe_load, strict)


def _read(path: Path, loader: Callable[[str], Any], strict: bool) -> Any:
    try:
        return loader(path.read_text()) if path.is_file() else None
    except (ValueError, yaml.YAMLError, UnicodeDecodeError) as error:
        if not strict:
            return None
        raise RunDirError(f"{path}: not readable ({str(error).splitlines()[0] if str(error) else 'empty'})") from None


class RunDir:
    """The files of one run directory, by what they are."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    config = property(lambda self: self.path / CONFIG)
    metrics = property(lambda self: self.path / METRICS)
    interrupted = property(lambda self: self.path / INTERRUPTED)
    failed = property(lambda self: self.path / FAILED)
    job = property(lambda self: self.path / JOB)
    log = property(lambda self: self.path / LOG)
    checkpoints = property(lambda self: self.path / CHECKPOINTS)
    last = property(lambda self: self.path / CHECKPOINTS / LAST)
    hydra_overrides = property(lambda self: self.path / HYDRA / "overrides.yaml")
    hydra_record = property(lambda self: self.path / HYDRA / "hydra.yaml")
    hydra_config = property(lambda self: self.path / HYDRA / "config.yaml")
    posthoc_record = property(lambda self: self.path / POSTHOC_RECORD)
    quality_figure = property(lambda self: self.path / QUALITY_FIGURE)
    latent_figure = property(lambda self: self.path / LATENT_FIGURE)
    samples_figure = property(lambda self: self.path / SAMPLES_FIGURE)

    def posthoc(self, name: str | None = None) -> Path:
        """`posthoc/`, or the refit `posthoc/<name>/`."""
        return self.path / POSTHOC if name is None else self.path / POSTHOC / name

    def is_run(self) -> bool:
        return self.config.is_file()

    def best_checkpoints(self) -> list[Path]:
        return sorted(self.checkpoints.glob("best-*.ckpt"))

    def best_checkpoint(self) -> Path | None:
        """The checkpoint the run tested (`best_checkpoint` in metrics.json), else the newest
        `best-*.ckpt` (a run stopped before its test), else None."""
        recorded = (read_json(self.metrics) or {}).get("best_checkpoint")
        if recorded:
            return self.path / recorded
        best = self.best_checkpoints()
        return best[-1] if best else None

    def attempt(self) -> str | None:
        """What an earlier attempt left here: "failed", "completed", "interrupted" (stopped by a
        signal), "killed" (started as a sweep job, never finished), or None (never started)."""
        if self.failed.is_file():
            return "failed"
        if self.metrics.is_file():
            return "completed"
        if self.interrupted.is_file():
            return "interrupted"
        return "killed" if self.job.is_file() else None


def find_checkpoint(target: str | Path, want: str = "best", label: str | None = None) -> tuple[RunDir, Path]:
    """(run directory, checkpoint) for a run directory or a checkpoint file inside one.

    A directory gives its best checkpoint (`want="best"`) or `checkpoints/last.ckpt`
    (`want="last"`); a file is taken as it is, and its run is the folder that holds its
    `checkpoints/` (or the file itself). `label` starts each error's line (default: the target)."""
    label = label or str(target)
    path = Path(target).expanduser()
    if not path.exists():
        raise RunDirError(f"{label}: no such run directory or checkpoint")
    folder = path if path.is_dir() else path.parent.parent if path.parent.name == CHECKPOINTS else path.parent
    run = RunDir(folder)
    if not run.is_run():
        raise RunDirError(f"{label}: {run.path} holds no vaelab run (no {CONFIG})")
    checkpoint = path if path.is_file() else run.best_checkpoint() if want == "best" else run.last
    if checkpoint is None:
        raise RunDirError(f"{label}: the run holds no trained model (no checkpoints/best-*.ckpt)")
    if not checkpoint.is_file():
        name = checkpoint.relative_to(run.path) if checkpoint.is_relative_to(run.path) else checkpoint
        raise RunDirError(f"{label}: the run has no checkpoint {name}")
    return RunDir(run.path.resolve()), checkpoint.resolve()


def remove_unused_run_dir(run_dir: str | Path, job_log: str = LOG) -> bool:
    """Remove the directory Hydra made for a run whose config was rejected, if it holds nothing
    but Hydra's own files (`.hydra/` and the job log). True if it was removed."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or not {p.name for p in run_dir.iterdir()} <= {HYDRA, job_log}:
        return False
    shutil.rmtree(run_dir)
    return True
