"""What a run says while it trains: a progress bar on a terminal, one line per epoch elsewhere.

A sweep job, a SLURM log or `python train.py > file` gets no progress bar (Lightning's bar rewrites
its line with carriage returns, hundreds of kilobytes of them per run, and costs time at every
step), but one readable line every `log.every_n_epochs` epochs:

    epoch 12/1000  train/loss 95.123  val/loss 101.234 (best 100.951)  1.2 s/epoch  14.8 s

The lines go through Python's `logging` (logger `vaelab.epochs`), so under `python train.py`
Hydra's job logging writes them to the console and to the run directory's `train.log` alike. On
a terminal the bar stays and the lines go to `train.log` only.
"""

from __future__ import annotations

import logging
import sys
import time

import pytorch_lightning as pl
from omegaconf import DictConfig

__all__ = ["EpochLog", "use_progress_bar"]

log = logging.getLogger("vaelab.epochs")
PROGRESS_BAR = ("auto", True, False)


def use_progress_bar(cfg: DictConfig) -> bool:
    """`log.progress_bar`: true, false, or auto (a bar only when stdout is a terminal);
    `trainer.enable_progress_bar=false` turns it off in any case."""
    choice = cfg.get("log", {}).get("progress_bar", "auto")
    if not cfg.trainer.get("enable_progress_bar", True):
        return False
    return sys.stdout.isatty() if choice == "auto" else bool(choice)


class _NotOnTerminals(logging.Filter):
    """Keeps the epoch lines off console handlers that write to a terminal (the bar is there)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != log.name


class EpochLog(pl.Callback):
    """One line per `every_n_epochs` epochs (and the last one) with the epoch, the training and
    validation loss, the time per epoch and the time since training started. A resumed run counts
    its time per epoch over the epochs this process trained, and its total from the first process
    on (the seconds and the best loss travel in the checkpoint).

    The line of an epoch is written when the epoch is completely done (validation, checkpoints,
    the module's epoch-end logging of `train/*`): at the start of the next one or at the end.
    With `terminal=True` (a progress bar on screen) the lines skip terminal console handlers.
    """

    def __init__(self, every_n_epochs: int = 1, terminal: bool = False, monitor: str = "val/loss"):
        self.every_n_epochs, self.terminal, self.monitor = every_n_epochs, terminal, monitor
        self.start: float | None = None
        self.first_epoch = 0  # epochs already done when this fit started (a resumed run)
        self.earlier = 0.0  # seconds of training before this fit (a resumed run: from its checkpoint)
        self.best: float | None = None  # the lowest `monitor` so far
        self.written = 0  # the epoch of the last line
        self._filter = _NotOnTerminals()
        self._filtered: list[logging.Handler] = []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.perf_counter()
        if self.terminal:
            handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
            self._filtered = [h for h in handlers if getattr(h.stream, "isatty", lambda: False)()]
            for handler in self._filtered:
                handler.addFilter(self._filter)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.first_epoch = trainer.current_epoch  # restored from the checkpoint by now

    def seconds(self) -> float:
        """Training time of the run so far: the earlier processes' (up to their checkpoint) and this fit's."""
        return self.earlier + (0.0 if self.start is None else time.perf_counter() - self.start)

    def state_dict(self) -> dict[str, float | None]:  # saved in every training checkpoint
        return {"seconds": self.seconds(), "best": self.best}

    def load_state_dict(self, state: dict[str, float | None]) -> None:
        self.earlier, self.best = float(state.get("seconds") or 0.0), state.get("best")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for handler in self._filtered:
            handler.removeFilter(self._filter)
        self._filtered = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if not trainer.sanity_checking and value is not None and (self.best is None or float(value) < self.best):
            self.best = float(value)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        done = trainer.current_epoch  # epochs completed
        if done and done % self.every_n_epochs == 0:
            self.write(trainer, done)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch > self.written:  # the last epoch, whatever every_n_epochs
            self.write(trainer, trainer.current_epoch)

    def line(self, trainer: pl.Trainer, epochs: int) -> str:
        metrics = {key: float(value) for key, value in trainer.callback_metrics.items() if value.numel() == 1}
        elapsed = time.perf_counter() - (self.start or 0.0)
        total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        parts = [f"epoch {epochs}{total}"]
        for key in ("train/loss", "val/loss"):
            if key in metrics:
                parts.append(f"{key} {metrics[key]:.3f}")
        if self.monitor in metrics and self.best is not None:
            parts[-1] += f" (best {self.best:.3f})"
        parts.append(f"{elapsed / max(epochs - self.first_epoch, 1):.2f} s/epoch  {self.earlier + elapsed:.1f} s")
        return "  ".join(parts)

    def write(self, trainer: pl.Trainer, epochs: int) -> None:
        self.written = epochs
        if trainer.is_global_zero:
            log.info(self.line(trainer, epochs))
