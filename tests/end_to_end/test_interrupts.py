"""Signals to a real training process, through the real command line: a stop with a checkpoint and
the command that resumes, a second Ctrl-C that exits at once, a SLURM preemption that requeues the
job, and data-parallel processes that stop together. The processes run as the test run starts
(`run_and_stop`, early work)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from helpers.commands import Started, start_train
from helpers.runs import events

pytestmark = pytest.mark.slow
ENDLESS = (
    "trainer.max_epochs=100000",
    "early_stopping.patience=100000",
    "figures.enabled=false",
    "checkpoint.last_every_seconds=0",
    "eval.num_samples=10",
    "eval.num_latent_samples=200",
    "eval.exact=false",
)


def start(run_dir: Path, *overrides: str, env: dict | None = None) -> Started:
    """An endless training run of the real command line, in a process group of its own."""
    return start_train(
        *ENDLESS, *overrides, f"hydra.run.dir={run_dir}", folder=run_dir.parent, env=env, start_new_session=True
    )


def slurm_environment(folder: Path) -> dict:
    """A SLURM job's environment: its job id, and a stand-in `scontrol` that logs its arguments."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {folder / "scontrol.log"}\n')
    (bin_dir / "scontrol").chmod(0o755)
    return {**os.environ, "SLURM_JOB_ID": "4242", "PATH": f"{bin_dir}:{os.environ['PATH']}"}


SECOND_CTRL_C = (
    "import os, signal, time\n"
    "from vaelab.training.signals import GracefulStop\n"
    "GracefulStop('unused.ckpt').on_train_start(None, None)\n"
    "os.kill(os.getpid(), signal.SIGINT); time.sleep(0.2)\n"
    "os.kill(os.getpid(), signal.SIGINT); time.sleep(30)\n"
    "print('still running')\n"
)


@dataclass
class Stopped:
    """A process of this module: its result and run directory; for the runs that are continued,
    what their files said when the process had stopped, and the continuing run's result."""

    result: subprocess.CompletedProcess
    run_dir: Path | None
    seen: dict = field(default_factory=dict)
    again: subprocess.CompletedProcess | None = None


def run_and_stop(root: Path) -> dict[str, Stopped]:
    """The processes of this module started at once; each training run is sent its signal as soon
    as its first epoch's checkpoint exists (training is under way). SIGUSR1 is the SLURM job's
    (`#SBATCH --signal=USR1@90`). As soon as they have stopped, the SIGTERM run is resumed with the
    command it printed and the SLURM job is started again as SLURM would."""
    cases = {
        "SIGTERM": (signal.SIGTERM, (), None),
        "SIGINT": (signal.SIGINT, (), None),
        "SIGUSR1": (signal.SIGUSR1, (), slurm_environment(root / "SIGUSR1")),
        "ddp": (signal.SIGTERM, ("trainer=ddp_cpu",), None),  # to the main process only
    }
    running = {}
    for name, (signum, overrides, env) in cases.items():
        run_dir = root / name / "run"
        running[name] = start(run_dir, *overrides, env=env), run_dir, signum
    ctrl_c = Started([sys.executable, "-c", SECOND_CTRL_C], root / "ctrl_c")
    waiting, deadline = dict(running), time.monotonic() + 600
    while waiting and time.monotonic() < deadline:
        for name, (process, run_dir, signum) in list(waiting.items()):
            if (run_dir / "checkpoints" / "last.ckpt").exists():
                process.process.send_signal(signum)
                del waiting[name]
            elif not process.running():  # ended before training: its test shows why
                del waiting[name]
        time.sleep(0.05)
    for process, _, _ in waiting.values():  # training did not start in time: its test fails on the exit status
        process.process.kill()
    done, again = {}, {}
    for name in ("SIGTERM", "SIGUSR1", "SIGINT", "ddp"):
        process, run_dir, _ = running[name]
        done[name] = Stopped(process.result(), run_dir)
        if name not in ("SIGTERM", "SIGUSR1") or not (run_dir / "interrupted.json").exists():
            continue  # not continued, or its test fails on the exit status
        done[name].seen = {
            "interrupted": json.loads((run_dir / "interrupted.json").read_text()),
            "metrics": (run_dir / "metrics.json").exists(),
            "scontrol": (run_dir.parent / "scontrol.log").read_text() if name == "SIGUSR1" else None,
        }
        epochs = done[name].seen["interrupted"]["epoch"] + 2  # a budget: the run ends two epochs later
        if name == "SIGTERM":  # the printed command
            args = (f"resume={run_dir}", f"trainer.max_epochs={epochs}")
            again[name] = start_train(*args, folder=run_dir.parent / "again")
        else:  # SLURM starts the same command again
            args = (*ENDLESS, f"trainer.max_epochs={epochs}", f"hydra.run.dir={run_dir}")
            again[name] = start_train(*args, folder=run_dir.parent / "again", env=slurm_environment(run_dir.parent))
    done["ctrl_c"] = Stopped(ctrl_c.result(), None)
    for name, process in again.items():
        done[name].again = process.result()
    return done


EARLY = (run_and_stop,)


@pytest.fixture(scope="module")
def stopped(early) -> dict[str, Stopped]:
    return early.result(run_and_stop)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)  # SIGUSR1: the SLURM test
def test_a_signal_stops_training_with_a_checkpoint_and_the_resume_command(stopped, signum):
    run = stopped[signum.name]
    run_dir, err = run.run_dir, run.result.stderr
    assert run.result.returncode == 128 + signum, err[-2000:]
    record = run.seen["interrupted"] if run.seen else json.loads((run_dir / "interrupted.json").read_text())
    assert record["signal"] == signum.name and record["checkpoint"] == "checkpoints/last.ckpt"
    command = f"vaelab-train resume={run_dir.resolve()}"
    assert record["resume"] == command
    assert f"Resume with: {command}" in err and "Traceback" not in err
    assert not (run.seen["metrics"] if run.seen else (run_dir / "metrics.json").exists())
    if signum != signal.SIGTERM:
        return
    # The printed command, with a budget: the run ends two epochs later, tested and evaluated.
    epochs = record["epoch"] + 2
    assert run.again.returncode == 0, run.again.stderr[-2000:]
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == epochs
    assert not (run_dir / "interrupted.json").exists()
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["trainer"]["max_epochs"] == epochs


def test_a_second_ctrl_c_exits_at_once(stopped):
    result = stopped["ctrl_c"].result
    assert result.returncode == 130
    assert "stopping after the current step" in result.stderr and "second Ctrl-C" in result.stderr
    assert "still running" not in result.stdout


def test_slurm_preemption_requeues_the_job_and_the_requeued_job_resumes(stopped):
    """A SLURM job (`srun python train.py ... hydra.run.dir=<fixed>`) gets SIGUSR1 before its time
    limit (`#SBATCH --signal=USR1@90`): it saves, asks `scontrol requeue`, and the same command,
    started again by SLURM, continues from the checkpoint. scontrol is a stand-in that logs."""
    run = stopped["SIGUSR1"]
    run_dir = run.run_dir
    assert run.result.returncode == 128 + signal.SIGUSR1, run.result.stderr[-2000:]
    assert run.seen["scontrol"].split() == ["requeue", "4242"]

    epoch = run.seen["interrupted"]["epoch"]
    # SLURM started the same command again (here with a budget, so that it ends soon).
    again = run.again
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Restored all states from the checkpoint" in again.stdout + again.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == epoch + 2
    steps = [event.step for event in events(run_dir).Scalars("val/loss")]
    assert steps == sorted(set(steps)) and len(steps) == epoch + 2, "every epoch once in TensorBoard"


def test_ddp_processes_stop_together_when_one_gets_the_signal(stopped):
    run = stopped["ddp"]
    err = run.result.stderr
    assert run.result.returncode == 143, err[-2000:]
    assert json.loads((run.run_dir / "interrupted.json").read_text())["signal"] == "SIGTERM"
    assert f"Resume with: vaelab-train resume={run.run_dir.resolve()}" in err
