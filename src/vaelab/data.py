"""LightningDataModules. Datasets are small enough to sit in memory as tensors.

Batches are sliced from those tensors directly (a BatchSampler handed to the dataset as a list
of indices), so there is no per-item `__getitem__` and no collation.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset


def batch_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool) -> DataLoader:
    """A DataLoader that yields (x[idx], y[idx]) for whole batches of indices at a time."""
    dataset = TensorDataset(x, y)
    order = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
    return DataLoader(dataset, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None)


class InMemoryDataModule(pl.LightningDataModule):
    """Subclasses implement `load()` → {"train"|"val"|"test": (x, y)} with x float in data units."""

    def __init__(self, batch_size: int = 64, eval_batch_size: int = 1024):
        super().__init__()
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            self.splits = self.load()

    def train_dataloader(self) -> DataLoader:
        return batch_loader(*self.splits["train"], self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return batch_loader(*self.splits["val"], self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return batch_loader(*self.splits["test"], self.eval_batch_size, shuffle=False)


class DigitsDataModule(InMemoryDataModule):
    """scikit-learn's bundled 8x8 digits (values 0..16), split by index like the blog post's code:
    the first 1000 images train, the next 350 validate, the last 447 test."""

    def load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.as_tensor(digits.data, dtype=torch.float32)
        y = torch.as_tensor(digits.target, dtype=torch.long)
        return {"train": (x[:1000], y[:1000]), "val": (x[1000:1350], y[1000:1350]), "test": (x[1350:], y[1350:])}
