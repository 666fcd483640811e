"""A clean stop on a signal, and a requeue under a scheduler.

    SIGTERM, SIGINT (Ctrl-C), SIGUSR1, SIGUSR2 while training
        → the current step finishes, `checkpoints/last.ckpt` is written, then `interrupted.json`
          (epoch, step, signal, the resume command); one line on stderr names the resume command
          and the process exits with 128 + the signal number (130, 143, 138, 140). A second
          Ctrl-C exits at once (status 130), writing nothing more.

Under a scheduler the signal also asks for a requeue (`requeue`): submitit's own handler when the
job was started by Hydra's submitit launcher (it resubmits the same job, which resumes from
`last.ckpt`), or `scontrol requeue` for a job started with `srun` / `sbatch`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Checkpoint

from vaelab.files import atomic_write_json
from vaelab.rundir import RunDir

__all__ = ["STOP_SIGNALS", "GracefulStop", "TrainingInterrupted", "requeue", "write_interrupted"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)


class TrainingInterrupted(Exception):
    """Training stopped on a signal after a step; `last.ckpt` holds the state after that step."""

    def __init__(self, signum: int, epoch: int, step: int, checkpoint: Path, previous_handler: Any = None):
        super().__init__(f"training stopped by {signal.Signals(signum).name} at epoch {epoch}, step {step}")
        self.signum, self.epoch, self.step, self.checkpoint = signum, epoch, step, checkpoint
        self.previous_handler = previous_handler

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class GracefulStop(Checkpoint):
    """Turns SIGTERM, SIGINT, SIGUSR1 and SIGUSR2 during training into a stop after the current
    step: `last.ckpt` is written to `checkpoint` and `TrainingInterrupted` raised out of `fit`.

    The handlers are installed when training starts (after Lightning's own, which would end the
    run with status 0 on SIGTERM) and Lightning restores the earlier ones when `fit` ends. It is a
    `Checkpoint` callback (it writes one), so Lightning runs it after the other callbacks.
    """

    def __init__(self, checkpoint: str | Path):
        self.checkpoint = Path(checkpoint)
        self.received: int | None = None
        self.saved_at: int | None = None  # global step of a checkpoint written at an epoch's end
        self.previous: dict[int, Any] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        self.received = None
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for signum in STOP_SIGNALS:
            self.previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None:
            if signum == signal.SIGINT:  # the second Ctrl-C: at once
                print("vaelab: second Ctrl-C, exiting at once", file=sys.stderr, flush=True)
                os._exit(128 + signum)
            return
        self.received = signum
        print(
            f"vaelab: received {signal.Signals(signum).name}, stopping after the current step "
            "(Ctrl-C again to exit at once)",
            file=sys.stderr,
            flush=True,
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        # After an epoch's last batch the stop waits for the epoch's end: Lightning resumes from a
        # checkpoint written at the last batch as from a finished epoch, skipping its validation.
        if self.pending(trainer) and batch_idx + 1 < trainer.num_training_batches:
            self.stop(trainer, save=True)

    def pending(self, trainer: pl.Trainer) -> bool:
        """A signal arrived. Under DDP the processes agree (one all-reduce per step), so that they
        all stop after the same step, whichever of them got the signal."""
        if trainer.world_size == 1:
            return self.received is not None
        stop = trainer.strategy.reduce_boolean_decision(self.received is not None, all=False)
        if stop and self.received is None:
            self.received = signal.SIGTERM  # another process got it
        return stop

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # A Checkpoint callback: Lightning calls it after early stopping and the ModelCheckpoints,
        # at the point where they save. The epoch's metrics are logged after this hook, so the
        # stop itself comes at the next epoch's start; when the run ends here, it finishes as usual.
        if self.pending(trainer):
            trainer.save_checkpoint(self.checkpoint)
            self.saved_at = trainer.global_step

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self.received is not None and self.saved_at == trainer.global_step:
            self.stop(trainer, save=False)

    def stop(self, trainer: pl.Trainer, save: bool) -> None:
        if save:
            trainer.save_checkpoint(self.checkpoint)
        raise TrainingInterrupted(
            self.received, trainer.current_epoch, trainer.global_step, self.checkpoint, self.previous.get(self.received)
        )


def write_interrupted(run_dir: Path, error: TrainingInterrupted, resume_command: str) -> Path:
    path = RunDir(run_dir).interrupted
    atomic_write_json(
        path,
        {
            "signal": signal.Signals(error.signum).name,
            "epoch": error.epoch,
            "step": error.step,
            "checkpoint": str(
                error.checkpoint.relative_to(run_dir) if error.checkpoint.is_relative_to(run_dir) else error.checkpoint
            ),
            "resume": resume_command,
            "time": time.time(),
        },
    )
    return path


def slurm_job_id() -> str | None:
    """The id `scontrol requeue` wants (array jobs: <array job>_<task>); None outside SLURM."""
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and task:
        return f"{array_job}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def requeue(error: TrainingInterrupted) -> str | None:
    """After an interrupted run has saved its state: let the scheduler run it again. Returns what
    was done (None: nothing). Called before the process exits.

    - a submitit job (Hydra's submitit launcher): submitit's own handler of the signal resubmits
      the job with the same arguments (`checkpoint()` of the launcher) and exits;
    - a plain SLURM job (`srun` / `sbatch`) on SIGUSR1 or SIGUSR2 (what `--signal=USR1@90` sends
      before the time limit or on preemption): `scontrol requeue <job id>`.
    Ctrl-C and SIGTERM outside submitit are a request to stop, not to come back: no requeue.
    """
    previous = error.previous_handler
    if callable(previous) and type(getattr(previous, "__self__", None)).__module__.startswith("submitit"):
        previous(error.signum, None)  # requeues, then exits
        return "submitit"
    job_id = slurm_job_id()
    if job_id and error.signum in (signal.SIGUSR1, signal.SIGUSR2):
        result = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True)
        if result.returncode != 0:
            print(f"vaelab: scontrol requeue {job_id} failed: {result.stderr.strip()}", file=sys.stderr)
            return None
        return f"scontrol requeue {job_id}"
    return None
