"""scikit-learn's bundled 8x8 digits: the default dataset, nothing to download."""

from __future__ import annotations

import torch

from vaelab.data.batches import InMemoryDataModule

__all__ = ["DigitsDataModule"]


class DigitsDataModule(InMemoryDataModule):
    """scikit-learn's bundled 8x8 digits (values 0..16), split by index like the blog post's code:
    the first 1000 images train, the next 350 validate, the last 447 test."""

    SPLIT_SIZES = {"train": 1000, "val": 350, "test": 447}  # known before loading (vaelab.config)

    def load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        from sklearn.datasets import load_digits  # scikit-learn: when the data are read, not at import

        digits = load_digits()
        x = torch.as_tensor(digits.data, dtype=torch.float32)
        y = torch.as_tensor(digits.target, dtype=torch.long)
        return {"train": (x[:1000], y[:1000]), "val": (x[1000:1350], y[1000:1350]), "test": (x[1350:], y[1350:])}
