"""vaelab-evaluate on the real command line: a run's metrics reproduced exactly, overrides, any
checkpoint to a file of one's choosing; a truncated checkpoint is one line and writes nothing. The
evaluations are started side by side, once, by the `evaluations` fixture."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers.commands import start_evaluate
from helpers.runs import corrupt, save_untrained_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def evaluations(digits_run, tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """The evaluations of this module, started side by side and waited for: name → (result, the
    run directory evaluated). Three copies of the shared digits run: evaluated as it was trained,
    with overrides, and its last checkpoint to a file of one's choosing; and an untrained run whose
    checkpoint is truncated."""
    root = tmp_path_factory.mktemp("evaluate")
    runs = {name: shutil.copytree(digits_run[0], root / name / "run") for name in ("again", "overridden", "last")}
    truncated = save_untrained_run(root / "truncated" / "run")
    corrupt(truncated, "truncated")
    started = {
        "again": start_evaluate(str(runs["again"]), folder=root / "again"),
        "overridden": start_evaluate(
            str(runs["overridden"]), "eval.num_samples=10", "eval.exact=false", folder=root / "overridden"
        ),
        "last": start_evaluate(
            str(runs["last"] / "checkpoints" / "last.ckpt"),
            "eval.num_samples=10",
            "eval.exact=false",
            "--json",
            str(root / "last" / "last.json"),
            folder=root / "last",
        ),
        "truncated": start_evaluate(str(truncated), folder=root / "truncated"),
    }
    runs["truncated"] = truncated.parent.parent
    return {name: (process.result(), runs[name]) for name, process in started.items()}


def test_script_reproduces_metrics_json_and_takes_overrides(digits_run, evaluations):
    before = json.loads((digits_run[0] / "metrics.json").read_text())
    result, run_dir = evaluations["again"]
    assert result.returncode == 0, result.stderr[-3000:]
    after = json.loads((run_dir / "metrics.json").read_text())
    for run in (before, after):
        run["eval"].pop("seconds"), run["eval"].pop("exact_seconds"), run["eval"].pop("quality_seconds")
    assert after == before  # same checkpoint, data and seed: the same numbers

    result, run_dir = evaluations["overridden"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "S=10 importance samples" in result.stdout
    changed = json.loads((run_dir / "metrics.json").read_text())
    assert changed["eval"]["num_samples"] == 10 and changed["test/nll"] > before["test/nll"]

    # Any checkpoint, results to a file of one's choosing; metrics.json is left alone.
    result, run_dir = evaluations["last"]
    assert result.returncode == 0, result.stderr[-3000:]
    last = run_dir / "checkpoints" / "last.ckpt"
    written = json.loads((run_dir.parent / "last.json").read_text())
    assert written["checkpoint"] == str(last) and written["eval"]["num_samples"] == 10
    assert math.isfinite(written["test/nll"])
    assert json.loads((run_dir / "metrics.json").read_text()) == json.loads(
        (digits_run[0] / "metrics.json").read_text()
    )


def test_evaluate_command_line_truncated_checkpoint(evaluations):
    result, run_dir = evaluations["truncated"]
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1 and str(ckpt) in result.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints", "config.yaml"]  # nothing written
