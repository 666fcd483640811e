"""Checkpoints that survive: written whole or not at all, in a background thread, on a clock, with
the random streams in them.

Checkpoints are written whole or not at all (`AtomicCheckpointIO`, with `vaelab.files`), like
every JSON and report file of a run, so a kill at any moment leaves the previous version readable;
a run writes them in a background thread (`BackgroundCheckpointIO`) that a stop waits for.
`last.ckpt` (`LatestCheckpoint`) holds the whole training state, including torch's, numpy's and
Python's random streams (`RandomStreams`), so a resumed run continues exactly as the uninterrupted
one would have.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.plugins.io import AsyncCheckpointIO, TorchCheckpointIO
from pytorch_lightning.utilities.seed import _collect_rng_states, _set_rng_states

from vaelab.files import atomic_write

__all__ = ["AtomicCheckpointIO", "BackgroundCheckpointIO", "LatestCheckpoint", "RandomStreams"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing to a temporary file that is renamed when complete."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        atomic_write(
            path, lambda tmp: super(AtomicCheckpointIO, self).save_checkpoint(checkpoint, tmp, storage_options)
        )


class BackgroundCheckpointIO(AsyncCheckpointIO):
    """Lightning's AsyncCheckpointIO around `AtomicCheckpointIO`: the checkpoint's tensors are
    copied at once and the file is written in one background thread while training goes on (writing
    `best-*.ckpt` after every improving epoch is a visible share of a digits epoch). Removing
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
    signal. Writing megabytes every epoch would cost a small run more than its arithmetic; a run killed
    outright loses at most `every_seconds` of training, and a signal loses nothing."""

    def __init__(self, path: str | Path, every_seconds: float = 60.0):
        path = Path(path)
        super().__init__(
            dirpath=path.parent,
            filename=path.stem,
            monitor=None,
            enable_version_counter=False,
            save_on_train_epoch_end=True,
        )
        self.every_seconds, self._written = every_seconds, time.monotonic()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        last_epoch = trainer.should_stop or trainer.current_epoch + 1 >= (trainer.max_epochs or -1) > 0
        if last_epoch or time.monotonic() - self._written >= self.every_seconds:
            super().on_train_epoch_end(trainer, pl_module)
            self._written = time.monotonic()

    def on_train_end(self, trainer, pl_module) -> None:  # stopped in an epoch (trainer.max_time, max_steps)
        if self._last_global_step_saved != trainer.global_step:
            self._save_checkpoint(trainer, str(Path(self.dirpath) / f"{self.filename}{self.FILE_EXTENSION}"))
