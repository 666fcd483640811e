"""Caltech 101 Silhouettes, 28x28 (Marlin et al., 2010): 8671 binary silhouettes of 101 classes.

VAE papers use Marlin's fixed split (4100 / 2264 / 2307), whose file could not be had: this reader
makes a split of the same sizes, stratified by class with a stated seed, so results on it are not
directly comparable with published numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vaelab.data.batches import InMemoryDataModule
from vaelab.data.binarized_mnist import resolve_data_root
from vaelab.data.checks import check_published_files
from vaelab.errors import DataFormatError

__all__ = ["CaltechSilhouettesDataModule"]

FILE, MD5 = "caltech101_silhouettes_28.mat", "1432d2809e8bf111f1104a234731ddb1"
NUM_IMAGES, NUM_CLASSES = 8671, 101


class CaltechSilhouettesDataModule(InMemoryDataModule):
    """Caltech 101 Silhouettes from `<root>/caltech101_silhouettes_28.mat` (md5 checked): 784 pixels
    in {0, 1} (the object 0 on a background of 1), upright, with their class 0..100 as label; split
    4100 / 2264 / 2307, stratified by class, by `split_seed`."""

    SPLIT_SIZES = {"train": 4100, "val": 2264, "test": 2307}

    def __init__(self, root: str | Path, split_seed: int = 0, batch_size: int = 100, eval_batch_size: int = 1000):
        super().__init__(batch_size, eval_batch_size)
        self.root, self.split_seed = root, split_seed

    @staticmethod
    def check_files(root: str | Path) -> None:
        """The folder holds {FILE} with its published md5 (vaelab.config calls this before any work)."""
        check_published_files(root, {FILE: MD5}, "Caltech 101 Silhouettes")

    def load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        from scipy.io import loadmat  # scipy and scikit-learn: when the data are read, not at import
        from sklearn.model_selection import train_test_split

        self.check_files(self.root)
        path = resolve_data_root(self.root) / FILE
        content = loadmat(path)
        x, y = content.get("X"), content.get("Y")
        if x is None or y is None or x.shape != (NUM_IMAGES, 784) or y.size != NUM_IMAGES:
            raise DataFormatError(f"{path}: expected X of shape ({NUM_IMAGES}, 784) and Y of {NUM_IMAGES} labels")
        x = x.reshape(-1, 28, 28).transpose(0, 2, 1).reshape(-1, 784)  # stored column by column
        y = y.ravel().astype(np.int64) - 1  # 1..101 in the file
        index = np.arange(NUM_IMAGES)
        sizes = self.SPLIT_SIZES
        train, rest = train_test_split(index, train_size=sizes["train"], stratify=y, random_state=self.split_seed)
        val, test = train_test_split(rest, train_size=sizes["val"], stratify=y[rest], random_state=self.split_seed)
        return {
            split: (torch.from_numpy(x[part].astype(np.float32)), torch.from_numpy(y[part]))
            for split, part in (("train", train), ("val", val), ("test", test))
        }
