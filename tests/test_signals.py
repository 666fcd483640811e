"""Signals, requeueing and re-run sweeps, through the real command line (real processes, real signals)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from conftest import ROOT
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from vaelab import reports
from vaelab.training.signals import TrainingInterrupted, requeue

ENDLESS = (
    "trainer.max_epochs=100000",
    "early_stopping.patience=100000",
    "figures.enabled=false",
    "checkpoint.last_every_seconds=0",
    "eval.num_samples=10",
    "eval.num_latent_samples=200",
    "eval.exact=false",
)


def start(run_dir, *overrides, env=None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "train.py", *ENDLESS, *overrides, f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def interrupt_when_training(process: subprocess.Popen, run_dir, signum: int) -> tuple[str, str]:
    """Send `signum` once the first epoch's checkpoint exists (training is under way)."""
    deadline = time.monotonic() + 180
    while not (run_dir / "checkpoints" / "last.ckpt").exists():
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.05)
    process.send_signal(signum)
    return process.communicate(timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)  # SIGUSR1: the SLURM test
def test_a_signal_stops_training_with_a_checkpoint_and_the_resume_command(tmp_path, signum):
    process = start(tmp_path)
    out, err = interrupt_when_training(process, tmp_path, signum)

    assert process.returncode == 128 + signum, err[-2000:]
    record = json.loads((tmp_path / "interrupted.json").read_text())
    assert record["signal"] == signum.name and record["checkpoint"] == "checkpoints/last.ckpt"
    command = f"vaelab-train resume={tmp_path.resolve()}"
    assert record["resume"] == command
    assert f"Resume with: {command}" in err and "Traceback" not in err
    assert not (tmp_path / "metrics.json").exists()
    if signum != signal.SIGTERM:
        return
    # The printed command, with a budget: the run ends two epochs later, tested and evaluated.
    epochs = record["epoch"] + 2
    resumed = subprocess.run(
        [sys.executable, "train.py", f"resume={tmp_path}", f"trainer.max_epochs={epochs}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs"] == epochs
    assert not (tmp_path / "interrupted.json").exists()
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["trainer"]["max_epochs"] == epochs


@pytest.mark.slow
def test_a_second_ctrl_c_exits_at_once():
    code = (
        "import os, signal, time\n"
        "from vaelab.training.signals import GracefulStop\n"
        "GracefulStop('unused.ckpt').on_train_start(None, None)\n"
        "os.kill(os.getpid(), signal.SIGINT); time.sleep(0.2)\n"
        "os.kill(os.getpid(), signal.SIGINT); time.sleep(30)\n"
        "print('still running')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 130
    assert "stopping after the current step" in result.stderr and "second Ctrl-C" in result.stderr
    assert "still running" not in result.stdout


@pytest.mark.slow
def test_slurm_preemption_requeues_the_job_and_the_requeued_job_resumes(tmp_path):
    """A SLURM job (`srun python train.py ... hydra.run.dir=<fixed>`) gets SIGUSR1 before its time
    limit (`#SBATCH --signal=USR1@90`): it saves, asks `scontrol requeue`, and the same command,
    started again by SLURM, continues from the checkpoint. scontrol is a stand-in that logs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\n')
    (bin_dir / "scontrol").chmod(0o755)
    env = {**os.environ, "SLURM_JOB_ID": "4242", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    run_dir = tmp_path / "run"

    process = start(run_dir, env=env)
    _, err = interrupt_when_training(process, run_dir, signal.SIGUSR1)
    assert process.returncode == 128 + signal.SIGUSR1, err[-2000:]
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]

    epoch = json.loads((run_dir / "interrupted.json").read_text())["epoch"]
    # SLURM starts the same command again (here with a budget, so that it ends soon).
    again = subprocess.run(
        [sys.executable, "train.py", *ENDLESS, f"trainer.max_epochs={epoch + 2}", f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Restored all states from the checkpoint" in again.stdout + again.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == epoch + 2
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    steps = [event.step for event in events.Scalars("val/loss")]
    assert steps == sorted(set(steps)) and len(steps) == epoch + 2, "every epoch once in TensorBoard"


def test_submitit_requeues_through_its_own_signal_handler():
    """Under Hydra's submitit launcher the job's handler of the preemption signal belongs to
    submitit: it resubmits the job (the launcher's `checkpoint()`), which then resumes."""
    calls = []
    handler_class = type(
        "SignalHandler",
        (),
        {
            "__module__": "submitit.core.job_environment",
            "checkpoint_and_try_requeue": lambda self, s, f: calls.append(s),
        },
    )
    handler = handler_class().checkpoint_and_try_requeue
    stopped = TrainingInterrupted(signal.SIGUSR2, 3, 120, ROOT / "last.ckpt", previous_handler=handler)
    assert requeue(stopped) == "submitit" and calls == [signal.SIGUSR2]
    assert requeue(TrainingInterrupted(signal.SIGTERM, 3, 120, ROOT / "last.ckpt")) is None  # a plain stop

    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher

    assert callable(BaseSubmititLauncher.checkpoint), "the launcher resubmits itself when submitit asks"


@pytest.mark.slow
def test_running_a_sweep_again_skips_completed_jobs_resumes_interrupted_and_reruns_failed(tmp_path):
    command = [
        sys.executable,
        "train.py",
        "-m",
        "prior=standard,mog,vamp",
        "trainer=fast",
        "figures.enabled=false",
        "eval.num_samples=10",
        "eval.num_latent_samples=200",
        "eval.exact=false",
        f"hydra.sweep.dir={tmp_path}",
    ]
    first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    jobs = {path.name.split("_")[1]: path for path in tmp_path.glob("*_seed*")}
    # mog: stopped by a signal after its first epoch; vamp: failed.
    (jobs["mog"] / "metrics.json").unlink()
    (jobs["mog"] / "interrupted.json").write_text(
        json.dumps({"signal": "SIGTERM", "epoch": 1, "step": 4, "checkpoint": "checkpoints/last.ckpt"})
    )
    (jobs["vamp"] / "failed.json").write_text(json.dumps({"error": "RuntimeError", "message": "node died"}))

    report = reports.write_report(tmp_path)
    status = {job.prior: job.status for job in report.jobs}
    assert status == {"standard": "completed", "mog": "interrupted", "vamp": "failed"}
    assert "interrupted" in (tmp_path / "comparison.md").read_text()

    second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    starts = {
        prior: [s["mode"] for s in json.loads((path / "job.json").read_text())["starts"]]
        for prior, path in jobs.items()
    }
    assert starts == {"standard": ["fresh"], "mog": ["fresh", "resumed"], "vamp": ["fresh", "fresh"]}
    assert (jobs["vamp"] / "attempts" / "1" / "failed.json").exists(), "the failed attempt's files are kept"
    assert not (jobs["mog"] / "interrupted.json").exists()
    report = reports.write_report(tmp_path)
    assert {job.status for job in report.jobs} == {"completed"}


@pytest.mark.slow
def test_ddp_processes_stop_together_when_one_gets_the_signal(tmp_path):
    process = start(tmp_path, "trainer=ddp_cpu")
    _, err = interrupt_when_training(process, tmp_path, signal.SIGTERM)  # to the main process only
    assert process.returncode == 143, err[-2000:]
    assert json.loads((tmp_path / "interrupted.json").read_text())["signal"] == "SIGTERM"
    assert f"Resume with: vaelab-train resume={tmp_path.resolve()}" in err
