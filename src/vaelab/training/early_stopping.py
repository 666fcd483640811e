"""Early stopping that waits for the end of the KL warm-up."""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping

__all__ = ["WarmupEarlyStopping"]


class WarmupEarlyStopping(EarlyStopping):
    """EarlyStopping that neither counts nor remembers epochs of the KL warm-up.

    During the warm-up the model optimises a different objective (KL weight < 1), so a validation
    loss that does not improve then says nothing about convergence: with the paper's 100 warm-up
    epochs and patience 50, plain early stopping could end a run half-way through the warm-up.
    The best score and the patience count start at epoch `warmup_epochs` (KL weight 1).
    """

    def __init__(self, *args, warmup_epochs: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.warmup_epochs = warmup_epochs

    def _should_skip_check(self, trainer: pl.Trainer) -> bool:
        return super()._should_skip_check(trainer) or trainer.current_epoch < self.warmup_epochs
