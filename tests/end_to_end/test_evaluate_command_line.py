"""vaelab-evaluate on the real command line: a run's metrics reproduced exactly, overrides, any
checkpoint to a file of one's choosing; a truncated checkpoint is one line and writes nothing. A short
run is trained and then evaluated, side by side, as the test run starts (`train_and_evaluate`, early work)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers.commands import start_evaluate, start_train
from helpers.runs import corrupt

pytestmark = pytest.mark.slow


# A short run with the whole evaluation: S = 100, the exact likelihood (on coarse grids: the test is
# that the command reproduces it, not its accuracy) and the sample quality.
RUN = (
    "trainer=fast",
    "trainer.max_epochs=5",
    "trainer.limit_train_batches=1.0",
    "figures.enabled=false",
    "eval.num_samples=100",
    "eval.exact_grid=8",
    "eval.exact_prior_grid=32",
)


def train_and_evaluate(root: Path) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """A short run trained on the command line, then the evaluations of this module side by side:
    name → (result, the run directory evaluated). "trained" is the run as training left it; two
    copies of it are evaluated, one as it was trained, the other's last checkpoint with overrides to
    a file of one's choosing; and a copy whose checkpoint is truncated."""
    trained = root / "trained" / "run"
    runs = {"trained": (start_train(*RUN, f"hydra.run.dir={trained}", folder=trained.parent).result(), trained)}
    if runs["trained"][0].returncode != 0:  # the tests fail on it
        return runs
    copies = {name: shutil.copytree(trained, root / name / "run") for name in ("again", "last")}
    truncated = root / "truncated" / "run"
    (truncated / "checkpoints").mkdir(parents=True)
    shutil.copy(trained / "config.yaml", truncated / "config.yaml")
    shutil.copy(trained / "checkpoints" / "last.ckpt", truncated / "checkpoints" / "last.ckpt")
    corrupt(truncated / "checkpoints" / "last.ckpt", "truncated")
    started = {
        "again": start_evaluate(str(copies["again"]), folder=root / "again"),
        "last": start_evaluate(
            str(copies["last"] / "checkpoints" / "last.ckpt"),
            "eval.num_samples=10",
            "eval.exact=false",
            "--json",
            str(root / "last" / "last.json"),
            folder=root / "last",
        ),
        "truncated": start_evaluate(str(truncated / "checkpoints" / "last.ckpt"), folder=root / "truncated"),
    }
    copies["truncated"] = truncated
    return runs | {name: (process.result(), copies[name]) for name, process in started.items()}


EARLY = (train_and_evaluate,)


@pytest.fixture(scope="module")
def evaluations(early) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    evaluations = early.result(train_and_evaluate)
    result, _ = evaluations["trained"]
    assert result.returncode == 0, result.stderr[-3000:]
    return evaluations


def test_script_reproduces_metrics_json_and_takes_overrides(evaluations):
    trained = evaluations["trained"][1]
    before = json.loads((trained / "metrics.json").read_text())
    result, run_dir = evaluations["again"]
    assert result.returncode == 0, result.stderr[-3000:]
    after = json.loads((run_dir / "metrics.json").read_text())
    for run in (before, after):
        run["eval"].pop("seconds"), run["eval"].pop("exact_seconds"), run["eval"].pop("quality_seconds")
    assert after == before  # same checkpoint, data and seed: the same numbers

    # Any checkpoint, with overrides, results to a file of one's choosing; metrics.json is left alone.
    result, run_dir = evaluations["last"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "S=10 importance samples" in result.stdout
    last = run_dir / "checkpoints" / "last.ckpt"
    written = json.loads((run_dir.parent / "last.json").read_text())
    assert written["checkpoint"] == str(last) and written["eval"]["num_samples"] == 10
    assert math.isfinite(written["test/nll"]) and written["test/nll"] > before["test/nll"]  # S=10 against S=100
    assert json.loads((run_dir / "metrics.json").read_text()) == json.loads((trained / "metrics.json").read_text())


def test_evaluate_command_line_truncated_checkpoint(evaluations):
    result, run_dir = evaluations["truncated"]
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1 and str(ckpt) in result.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints", "config.yaml"]  # nothing written
