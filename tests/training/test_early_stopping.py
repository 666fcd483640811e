"""Early stopping that waits for the end of the KL warm-up before it counts its patience."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from vaelab.training.early_stopping import WarmupEarlyStopping


class ConstantLoss(pl.LightningModule):
    """A model whose validation loss never improves."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return (self.weight * batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", 1.0)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


class EpochsSeen(Callback):
    def __init__(self):
        self.epochs = 0

    def on_train_epoch_end(self, trainer, pl_module):
        self.epochs += 1


@pytest.mark.parametrize("warmup, epochs", [(0, 3), (5, 8)])
def test_early_stopping_counts_patience_only_after_the_warmup(warmup, epochs):
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 1)), batch_size=2)
    seen = EpochsSeen()
    stop = WarmupEarlyStopping(monitor="val/loss", patience=2, warmup_epochs=warmup)
    trainer = pl.Trainer(
        max_epochs=50,
        callbacks=[stop, seen],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(ConstantLoss(), train_dataloaders=data, val_dataloaders=data)
    # The first counted epoch sets the best score; `patience` epochs without improvement stop it.
    assert seen.epochs == epochs
