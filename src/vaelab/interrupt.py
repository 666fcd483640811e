"""Runs that survive: files replaced atomically, a clean stop on a signal, the random streams saved.

    SIGTERM, SIGINT (Ctrl-C), SIGUSR1, SIGUSR2 while training
        → the current step finishes, `checkpoints/last.ckpt` is written, then `interrupted.json`
          (epoch, step, signal, the resume command); one line on stderr names the resume command
          and the process exits with 128 + the signal number (130, 143, 138, 140). A second
          Ctrl-C exits at once (status 130), writing nothing more.

Checkpoints are written whole or not at all (`AtomicCheckpointIO`, with `vaelab.files`), like
every JSON and report file of a run, so a kill at any moment leaves the previous version readable;
a run writes them in a background thread (`BackgroundCheckpointIO`) that a stop waits for.

Under a scheduler the signal also asks for a requeue (`vaelab.interrupt.requeue`): submitit's own
handler when the job was started by Hydra's submitit launcher (it resubmits the same job, which
resumes from `last.ckpt`), or `scontrol requeue` for a job started with `srun` / `sbatch`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import Checkpoint, ModelCheckpoint
from pytorch_lightning.plugins.io import AsyncCheckpointIO
from lightning_fabric.utilities.seed import _collect_rng_states, _set_rng_states

from vaelab.files import atomic_write, atomic_write_json
from vaelab.resume import INTERRUPTED_FILE

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing to a temporary file that is renamed when complete."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        atomic_write(path, lambda tmp: super(AtomicCheckpointIO, self).save_checkpoint(checkpoint, tmp, storage_options))


class BackgroundCheckpointIO(AsyncCheckpointIO):
    """Lightning's AsyncCheckpointIO around `AtomicCheckpointIO`: the checkpoint's tensors are
    copied at once and the file is written in one background thread while training goes on (on
    digits, writing `best-*.ckpt` after every improving epoch took 8% of the epoch's time). Removing
    an older checkpoint waits its turn behind the writes queued before it. Lightning waits for the
    thread, and raises what failed in it, at the end of fit and when training stops on an exception
    or a signal, before `interrupted.json` is written."""

    def __init__(self):
        super().__init__(AtomicCheckpointIO())

    def remove_checkpoint(self, path) -> None:
        self._ensure_setup()

        def remove() -> None:
            try:
                self.checkpoint_io.remove_checkpoint(path)
            except BaseException as error:  # noqa: BLE001 - raised by the next save or at teardown
                self._error = error

        self._executor.submit(remove)


class RandomStreams(pl.Callback):
    """Saves torch's, numpy's and Python's random states in every checkpoint and restores them when
    training resumes (at `on_train_start`, after the sanity check, which draws samples of its own),
    so a resumed run draws the same z ~ q(z|x) as the uninterrupted one."""

    def __init__(self):
        self._pending: dict[str, Any] | None = None

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        states = _collect_rng_states(include_cuda=torch.cuda.is_available())
        # numpy's key array as a tensor: checkpoints stay loadable with torch.load(weights_only=True)
        name, keys, *rest = states["numpy"]
        states["numpy"] = (name, torch.from_numpy(keys.astype("int64")), *rest)
        checkpoint["rng_states"] = states

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        self._pending = checkpoint.get("rng_states")

    def on_train_start(self, trainer, pl_module) -> None:
        if self._pending is None:
            return
        states = dict(self._pending)
        if "torch.cuda" in states and not torch.cuda.is_available():  # a GPU run resumed on a CPU
            del states["torch.cuda"]
        name, keys, *rest = states["numpy"]
        states["numpy"] = (name, keys.numpy().astype("uint32"), *rest)
        _set_rng_states(states)
        self._pending = None


class LatestCheckpoint(ModelCheckpoint):
    """`last.ckpt`: the state at the end of an epoch once `every_seconds` have passed since the
    last one was written (0: every epoch), at the end of training, and (by `GracefulStop`) on a
    signal. Writing 5 MB every epoch cost the digits run more than its arithmetic; a run killed
    outright loses at most `every_seconds` of training, and a signal loses nothing."""

    def __init__(self, path: str | Path, every_seconds: float = 60.0):
        path = Path(path)
        super().__init__(dirpath=path.parent, filename=path.stem, monitor=None, enable_version_counter=False,
                         save_on_train_epoch_end=True)
        self.every_seconds, self._written = every_seconds, time.monotonic()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        last_epoch = trainer.should_stop or trainer.current_epoch + 1 >= (trainer.max_epochs or -1) > 0
        if last_epoch or time.monotonic() - self._written >= self.every_seconds:
            super().on_train_epoch_end(trainer, pl_module)
            self._written = time.monotonic()

    def on_train_end(self, trainer, pl_module) -> None:  # stopped in an epoch (trainer.max_time, max_steps)
        if self._last_global_step_saved != trainer.global_step:
            self._save_checkpoint(trainer, str(Path(self.dirpath) / f"{self.filename}{self.FILE_EXTENSION}"))


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
        print(f"vaelab: received {signal.Signals(signum).name}, stopping after the current step "
              "(Ctrl-C again to exit at once)", file=sys.stderr, flush=True)  # fmt: skip

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
        raise TrainingInterrupted(self.received, trainer.current_epoch, trainer.global_step, self.checkpoint,
                                  self.previous.get(self.received))  # fmt: skip


def write_interrupted(run_dir: Path, error: TrainingInterrupted, resume_command: str) -> Path:
    path = run_dir / INTERRUPTED_FILE
    atomic_write_json(path, {
        "signal": signal.Signals(error.signum).name,
        "epoch": error.epoch,
        "step": error.step,
        "checkpoint": str(error.checkpoint.relative_to(run_dir) if error.checkpoint.is_relative_to(run_dir)
                          else error.checkpoint),
        "resume": resume_command,
        "time": time.time(),
    })  # fmt: skip
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
