"""MNIST and Fashion-MNIST as VAE papers use them: dynamically binarized, or as grey levels.

The split is the VampPrior paper's "dynamic MNIST" (Tomczak & Welling, 2018): the first 50,000
training images train, the last 10,000 validate, the 10,000 test images test. Binarized, a pixel
is 1 with probability grey / 255: training batches are binarized afresh every time they are drawn
(`DynamicBinarization`), validation and test once, with a fixed seed. Fashion-MNIST is read and
split the same way (Exemplar VAE, Norouzi et al., 2020, uses it so).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vaelab.data.batches import Batch, InMemoryDataModule
from vaelab.data.binarized_mnist import resolve_data_root
from vaelab.data.checks import check_published_files
from vaelab.data.idx import read_idx

__all__ = ["DynamicBinarization", "FashionMNISTDataModule", "MNISTDataModule"]

NUM_TRAIN = 50000  # of the 60,000 training images; the last 10,000 validate
EVAL_SEED = 777  # validation and test are binarized once, with this seed (the paper's)


class DynamicBinarization(Dataset):
    """Grey images in [0, 1] binarized afresh each time a batch is drawn: pixel ~ Bernoulli(grey).

    The draw of a batch is seeded by (seed, epoch, the batch's number in the epoch): reproducible
    from the run's seed, the same after a resume that continues mid-epoch, and the same whole batch
    however many data-parallel processes take slices of it.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, seed: int):
        self.x, self.y, self.seed = x, y, int(seed)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        state = np.random.SeedSequence([self.seed, batch.epoch, batch.number]).generate_state(1, np.uint64)[0]
        generator = torch.Generator().manual_seed(int(state))
        uniform = torch.rand(batch.size, self.x.shape[1], generator=generator)[batch.offset : batch.offset + len(batch)]
        return (uniform < self.x[batch]).float(), self.y[batch]


class MNISTDataModule(InMemoryDataModule):
    """MNIST from `<root>/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz` (each file's md5 checked):
    50000 train, 10000 validation and 10000 test images of 784 pixels, with their digits as labels.

    Arguments:
        binarize: True: pixels in {0, 1}, training batches binarized dynamically; False: grey
            levels 0..255 (a likelihood over 256 levels).
        limit: keep only the first `limit` images of each split (smoke tests).
    """

    FILES = {  # the four files and the md5s of the .gz files as published
        "train_images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "train_labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        "test_images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        "test_labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    }
    NAME = "MNIST"
    SPLIT_SIZES = {"train": NUM_TRAIN, "val": 10000, "test": 10000}

    def __init__(
        self,
        root: str | Path,
        binarize: bool = True,
        batch_size: int = 100,
        eval_batch_size: int = 1000,
        limit: int | None = None,
    ):
        super().__init__(batch_size, eval_batch_size)
        self.root, self.binarize, self.limit = root, binarize, limit

    @classmethod
    def check_files(cls, root: str | Path) -> None:
        """The folder holds the four files with their published md5s (vaelab.config calls this at
        start-up, before any work: a damaged file is one line and no run directory)."""
        check_published_files(root, dict(cls.FILES.values()), cls.NAME)

    def load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        self.check_files(self.root)
        folder = resolve_data_root(self.root)

        def read(key: str, count: int, image: bool) -> torch.Tensor:  # its md5 was checked by check_files
            name, _ = self.FILES[key]
            return torch.from_numpy(read_idx(folder / name, (count, 28, 28) if image else (count,)).copy())

        train_x, train_y = read("train_images", 60000, True), read("train_labels", 60000, False)
        test_x, test_y = read("test_images", 10000, True), read("test_labels", 10000, False)
        splits = {
            "train": (train_x[:NUM_TRAIN], train_y[:NUM_TRAIN]),
            "val": (train_x[NUM_TRAIN:], train_y[NUM_TRAIN:]),
            "test": (test_x, test_y),
        }
        generator = torch.Generator().manual_seed(EVAL_SEED)
        out = {}
        for split, (x, y) in splits.items():
            x = x.flatten(1).float()
            if self.binarize:
                x = x / 255.0
                if split != "train":  # binarized once (the whole split: `limit` does not change it)
                    x = torch.bernoulli(x, generator=generator)
            out[split] = (x[: self.limit], y[: self.limit].long())
        return out

    def train_dataset(self, seed: int) -> Dataset | None:
        return DynamicBinarization(*self.splits["train"], seed) if self.binarize else None

    def fixed_train(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training split as one draw of it looks: binarized once, with a fixed seed (the
        sample-quality classifier learns on it, to judge binary samples against binary images)."""
        x, y = self.splits["train"]
        if not self.binarize:
            return x, y
        return torch.bernoulli(x, generator=torch.Generator().manual_seed(EVAL_SEED + 1)), y


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017), read and split as MNIST: 10 clothing classes."""

    FILES = {
        "train_images": ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        "train_labels": ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        "test_images": ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        "test_labels": ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    }
    NAME = "Fashion-MNIST"
