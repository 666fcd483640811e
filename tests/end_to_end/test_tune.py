"""vaelab-tune on the real command line: a two-prior, three-trial search on the digits with short
epochs, stopped by SIGTERM while a trial trains, then the same command again, which finishes the
search without repeating a finished trial and trains each prior's chosen setting. Run once, as the
test run starts (`tune_stop_and_continue`, early work)."""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from helpers.commands import Started

pytestmark = pytest.mark.slow
optuna = pytest.importorskip("optuna")

TUNE = [sys.executable, "-m", "vaelab.cli.tune", "--priors", "standard,mog", "--trials", "3", "--seeds", "0"]
# Three trials of four short epochs each, a last.ckpt after every epoch, and no pictures; the final
# runs' evaluation takes a fraction of a second.
SHORT = (
    "trainer=fast",
    "trainer.max_epochs=4",
    "checkpoint.last_every_seconds=0",
    "figures.enabled=false",
    "eval.num_samples=10",
    "eval.num_latent_samples=200",
    "eval.exact=false",
    "eval.quality.enabled=false",
)


@dataclass
class Tuned:
    folder: Path
    stopped: object  # the first command's CompletedProcess
    finished_before: dict  # trial folder → mtime of its metrics.json when the first command ended
    interrupted: list  # the trial folders left with an interrupted.json
    again: object = None


def trial_folders(folder: Path, prior: str) -> list[Path]:
    return sorted(path for path in (folder / "search" / prior).glob(f"{prior}_*") if path.is_dir())


def tune_stop_and_continue(root: Path) -> Tuned:
    folder = root / "tune"
    command = [*TUNE, "--dir", str(folder), *SHORT]
    first = Started(command, root / "first")
    deadline = time.monotonic() + 300
    while first.running() and time.monotonic() < deadline:
        trials = trial_folders(folder, "standard")
        done = [path for path in trials if (path / "metrics.json").exists()]
        training = [path for path in trials if (path / "checkpoints" / "last.ckpt").exists() and path not in done]
        if done and training:  # a trial finished and the next one is training: stop vaelab-tune (it passes it on)
            first.process.send_signal(signal.SIGTERM)
            break
        time.sleep(0.05)
    stopped = first.result()
    trials = [path for prior in ("standard", "mog") for path in trial_folders(folder, prior)]
    finished = {path: (path / "metrics.json").stat().st_mtime for path in trials if (path / "metrics.json").exists()}
    interrupted = [path for path in trials if (path / "interrupted.json").exists()]
    tuned = Tuned(folder, stopped, finished, interrupted)
    tuned.again = Started([*TUNE, "--dir", str(folder), *SHORT], root / "again").result()
    return tuned


EARLY = (tune_stop_and_continue,)


@pytest.fixture(scope="module")
def tuned(early) -> Tuned:
    return early.result(tune_stop_and_continue)


def test_a_signal_stops_the_search_in_a_trial_and_the_same_command_continues_it(tuned):
    assert tuned.stopped.returncode == 128 + signal.SIGTERM, tuned.stopped.stderr[-3000:]
    assert len(tuned.interrupted) == 1 and tuned.finished_before, "the signal must land in a trial's training"
    assert tuned.again.returncode == 0, tuned.again.stderr[-3000:]
    storage = f"sqlite:///{tuned.folder / 'study.db'}"
    for prior in ("standard", "mog"):
        trials = optuna.load_study(study_name=prior, storage=storage).trials
        completed = [trial for trial in trials if trial.state == optuna.trial.TrialState.COMPLETE]
        assert len(completed) == 3 and all(math.isfinite(trial.value) for trial in completed)  # the budget, no more
        folders = trial_folders(tuned.folder, prior)
        assert len(folders) == 3 and all((path / "metrics.json").exists() for path in folders)
        for path in folders:  # judged by the validation loss only: no test-set number in a trial
            assert not any(key.startswith("test/") for key in json.loads((path / "metrics.json").read_text()))
    for path, mtime in tuned.finished_before.items():  # a finished trial is not run again
        assert (path / "metrics.json").stat().st_mtime == mtime
    (resumed,) = tuned.interrupted  # the interrupted trial was asked again and continued in its folder
    starts = json.loads((resumed / "job.json").read_text())["starts"]
    assert [start["mode"] for start in starts] == ["fresh", "resumed"]


def test_the_chosen_setting_of_each_prior_is_trained_and_tested(tuned):
    summary = json.loads((tuned.folder / "tuning.json").read_text())["priors"]
    assert summary["standard"]["default_params"] == {"optimizer.lr": 0.001}  # the default is the first trial
    for prior in ("standard", "mog"):
        best = summary[prior]["best_params"]
        assert summary[prior]["trials"] == 3 and best and "optimizer.lr" in best
        run = tuned.folder / "final" / f"{prior}_seed0"
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["optimizer"]["lr"] == best["optimizer.lr"] and config["eval"]["test"] is True
        if prior == "mog":
            assert config["prior"]["num_components"] == best["prior.num_components"]
        assert math.isfinite(json.loads((run / "metrics.json").read_text())["test/nll"])
    page = (tuned.folder / "final" / "comparison.html").read_text()
    assert "<td>standard" in page and "<td>mog (" in page and "Δ vs standard" in page
    assert "| standard |" in (tuned.folder / "tuning.md").read_text()
