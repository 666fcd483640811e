"""LightningDataModules. Datasets are small enough to sit in memory as tensors.

Batches are sliced from those tensors directly (`BatchIndices` hands the dataset a list of
indices), so there is no per-item `__getitem__` and no collation. Under data parallelism (DDP)
each process takes its slice of every batch, so `batch_size` is the total batch whatever the
number of processes; the trainer configs for DDP set `use_distributed_sampler: false`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerStatus
from torch.utils.data import DataLoader, TensorDataset

from vaelab.config import ConfigError


class BatchIndices:
    """Index lists for one pass over `num_examples` examples in batches of `batch_size`: in order,
    or shuffled by a generator seeded with `seed + epoch` (Lightning calls `set_epoch`), so every
    process of a data-parallel run draws the same order. Each of `world_size` processes takes its
    own contiguous slice of every batch: together they see exactly the batches of one process, and
    DDP's averaged gradient is the single-process one. With world_size > 1, a last batch smaller
    than world_size is dropped (every process must take the same number of steps).

    Resumable: `state_dict()` says how many batches of which epoch the training loop has consumed,
    and after `load_state_dict()` the pass over that epoch starts with the next batch, so a run
    stopped mid-epoch continues with exactly the batches it would have seen."""

    def __init__(self, num_examples: int, batch_size: int, shuffle: bool = False, seed: int = 0, rank: int = 0,
                 world_size: int = 1):  # fmt: skip
        self.num_examples, self.batch_size, self.shuffle, self.seed = num_examples, batch_size, shuffle, seed
        self.rank, self.world_size, self.epoch = rank, world_size, 0
        self.fetched = 0  # batches handed out in this pass
        self._resume_at: tuple[int, int] | None = None  # (epoch, batches to skip) after load_state_dict

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.fetched = epoch, 0

    def __iter__(self):
        if self.shuffle:
            generator = torch.Generator().manual_seed((self.seed + self.epoch) % 2**63)
            order = torch.randperm(self.num_examples, generator=generator)
        else:
            order = torch.arange(self.num_examples)
        skip = self._resume_at[1] if self._resume_at and self._resume_at[0] == self.epoch else 0
        self._resume_at, self.fetched = None, skip
        for batch in order.split(self.batch_size)[skip:]:
            if len(batch) >= self.world_size:
                self.fetched += 1
                yield batch.tensor_split(self.world_size)[self.rank].tolist()

    def __len__(self) -> int:
        full, rest = divmod(self.num_examples, self.batch_size)
        return full + int(rest > 0 and rest >= self.world_size)

    def state_dict(self) -> dict[str, int]:
        # Every batch handed out has been consumed: Lightning fetches ahead only from loaders
        # without a length, and this one has one.
        return {"epoch": self.epoch, "consumed": self.fetched}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_at = (int(state["epoch"]), int(state["consumed"]))


class BatchLoader(DataLoader):
    """A DataLoader whose position is saved in checkpoints (Lightning saves and restores the state
    of training loaders that have `state_dict`). It has a generator of its own, so making its
    iterator draws nothing from torch's global random stream: the draws z ~ q(z|x) of a resumed
    run are then those of the uninterrupted run."""

    def state_dict(self) -> dict[str, int]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.load_state_dict(state)


def batch_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0,
                 world_size: int = 1) -> DataLoader:  # fmt: skip
    """A DataLoader that yields (x[idx], y[idx]) for whole batches of indices at a time."""
    indices = BatchIndices(len(x), batch_size, shuffle, seed, rank, world_size)
    return BatchLoader(TensorDataset(x, y), sampler=indices, batch_size=None, generator=torch.Generator())


class InMemoryDataModule(pl.LightningDataModule):
    """Subclasses implement `load()` → {"train"|"val"|"test": (x, y)} with x float in data units."""

    def __init__(self, batch_size: int = 64, eval_batch_size: int = 1024):
        super().__init__()
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.shuffle_seed: int | None = None  # seeds the training order; the run's seed, taken at setup

    def load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            self.splits = self.load()
        if self.shuffle_seed is None:  # after `pl.seed_everything(seed)`: the same in every DDP process
            self.shuffle_seed = torch.initial_seed()

    def shard(self) -> tuple[int, int]:
        """(rank, world size) while a data-parallel trainer runs its loops, else (0, 1): evaluation
        after training, or a loader made by hand, sees the whole split."""
        trainer = self.trainer
        if trainer is None or trainer.world_size == 1 or trainer.state.status != TrainerStatus.RUNNING:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def train_dataloader(self) -> DataLoader:
        seed = torch.initial_seed() if self.shuffle_seed is None else self.shuffle_seed
        return batch_loader(*self.splits["train"], self.batch_size, True, seed, *self.shard())

    def val_dataloader(self) -> DataLoader:
        return batch_loader(*self.splits["val"], self.eval_batch_size, False, 0, *self.shard())

    def test_dataloader(self) -> DataLoader:
        return batch_loader(*self.splits["test"], self.eval_batch_size, False, 0, *self.shard())


class DigitsDataModule(InMemoryDataModule):
    """scikit-learn's bundled 8x8 digits (values 0..16), split by index like the blog post's code:
    the first 1000 images train, the next 350 validate, the last 447 test."""

    SPLIT_SIZES = {"train": 1000, "val": 350, "test": 447}  # known before loading (vaelab.config)

    def load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.as_tensor(digits.data, dtype=torch.float32)
        y = torch.as_tensor(digits.target, dtype=torch.long)
        return {"train": (x[:1000], y[:1000]), "val": (x[1000:1350], y[1000:1350]), "test": (x[1350:], y[1350:])}


# --- Statically binarized MNIST (Larochelle & Murray, 2011), the VampPrior paper's benchmark --------

AMAT_SPLITS = {"train": "train", "val": "valid", "test": "test"}  # our split name → file suffix
MNIST_SIZES = {"train": 50000, "val": 10000, "test": 10000}
NUM_PIXELS = 784
# The test file is MNIST's test set in class order (verified in ../shared/data/binarized_mnist/README.md):
# these many 0s, then 1s, …; the train and valid files are shuffled and their labels unknown.
MNIST_TEST_CLASS_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)


def mnist_test_labels() -> torch.Tensor:
    """The digit of each of the 10000 binarized MNIST test images, in file order."""
    return torch.repeat_interleave(torch.arange(10), torch.tensor(MNIST_TEST_CLASS_COUNTS))


class AmatFormatError(ConfigError):
    """A `.amat` file is missing or is not N lines of 0/1 values separated by single spaces."""


def read_amat(path: str | Path, num_values: int = NUM_PIXELS, num_rows: int | None = None) -> np.ndarray:
    """The (N, num_values) uint8 array of 0/1 in a `.amat` text file: one image per line.

    Canonical files go through `_parse_canonical` (the whole set in well under a second);
    anything else (CRLF line ends, extra spaces, a bad line) through a line-by-line parse that
    either succeeds or says which line is wrong and how. `num_rows`, if given, is checked too.
    """
    path = Path(path)
    shape = f"({num_rows or 'N'}, {num_values})"
    if not path.is_file():
        raise AmatFormatError(f"{path}: file not found (expected a binarized MNIST .amat file of shape {shape})")
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data += b"\n"
    values = _parse_canonical(data, num_values)
    if values is None:
        values = _parse_amat_lines(path, data, num_values, shape)
    if num_rows is not None and values.shape[0] != num_rows:
        raise AmatFormatError(f"{path}: expected shape {shape}, found {values.shape[0]} lines of {num_values} values")
    return values


def _parse_canonical(data: bytes, num_values: int) -> np.ndarray | None:
    """The canonical layout "0 1 ... 1\\n" has exactly two bytes per value: reshape the raw bytes
    and take every other one. None unless the bytes are exactly that."""
    raw = np.frombuffer(data, np.uint8)
    if raw.size == 0 or raw.size % (2 * num_values):
        return None
    values, separators = raw.reshape(-1, 2 * num_values)[:, 0::2], raw.reshape(-1, 2 * num_values)[:, 1::2]
    if not ((separators[:, :-1] == ord(" ")).all() and (separators[:, -1] == ord("\n")).all()):
        return None
    if not ((values == ord("0")) | (values == ord("1"))).all():
        return None
    return values - ord("0")


def _parse_amat_lines(path: Path, data: bytes, num_values: int, shape: str) -> np.ndarray:
    """The slow, tolerant parse: any whitespace, CRLF; a precise error for the first bad line."""
    expected = f"expected shape {shape} of 0/1 values"
    lines = data.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise AmatFormatError(f"{path}: {expected}, found an empty file")
    out = np.empty((len(lines), num_values), np.uint8)
    for number, line in enumerate(lines, start=1):
        tokens = line.split()
        if len(tokens) != num_values:
            raise AmatFormatError(f"{path}: {expected}, found line {number} with {len(tokens)} values")
        bad = next((token for token in tokens if token not in (b"0", b"1")), None)
        if bad is not None:
            raise AmatFormatError(f"{path}: {expected}, found the value {bad.decode(errors='replace')!r} on line {number}")
        out[number - 1] = np.frombuffer(b"".join(tokens), np.uint8) - ord("0")
    return out


def project_root() -> Path | None:
    """The vaelab checkout (the folder holding conf/train.yaml) for an editable install, else None."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "conf" / "train.yaml").is_file() else None


def resolve_data_root(root: str | Path) -> Path:
    """An absolute root as is; a relative one against the current directory if it exists there,
    else against the vaelab checkout (so `python train.py` works from any directory)."""
    root = Path(root).expanduser()
    if root.is_absolute() or root.exists() or project_root() is None:
        return root
    candidate = project_root() / root
    return candidate if candidate.exists() else root


class BinarizedMNISTDataModule(InMemoryDataModule):
    """Statically binarized MNIST: 50000 train, 10000 validation, 10000 test images of 784
    pixels in {0, 1}, read from `<root>/binarized_mnist_{train,valid,test}.amat`.

    The test images carry their digit as y (the test file is in class order, `mnist_test_labels`)
    when the file has all 10000; train and validation labels are unknown, y = -1 there.
    `check_sizes` insists on the canonical counts (turn it off for small test files); `limit`
    keeps only the first `limit` images of each split (smoke tests), after that check.
    """

    SPLIT_SIZES = MNIST_SIZES  # with check_sizes (vaelab.config checks prior.init=data against them)

    def __init__(self, root: str | Path, batch_size: int = 100, eval_batch_size: int = 1000,
                 check_sizes: bool = True, limit: int | None = None):  # fmt: skip
        super().__init__(batch_size, eval_batch_size)
        self.root, self.check_sizes, self.limit = root, check_sizes, limit

    @staticmethod
    def check_files(root: str | Path) -> None:
        """The folder and its three files exist (vaelab.config calls this at start-up; nothing is read)."""
        folder = resolve_data_root(root)
        if not folder.is_dir():
            raise AmatFormatError(
                f"dataset.root={str(root)!r} is not allowed: no such folder (looked in {folder.resolve()}); it should hold "
                "binarized_mnist_{train,valid,test}.amat (see the README for where to get them)"
            )
        for split, suffix in AMAT_SPLITS.items():
            path = folder / f"binarized_mnist_{suffix}.amat"
            if not path.is_file():
                raise AmatFormatError(f"{path}: file not found (expected a binarized MNIST .amat file of shape "
                                      f"({MNIST_SIZES[split]}, {NUM_PIXELS}))")  # fmt: skip

    def load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        self.check_files(self.root)
        root = resolve_data_root(self.root)
        splits = {}
        for split, suffix in AMAT_SPLITS.items():
            rows = MNIST_SIZES[split] if self.check_sizes else None
            x = torch.from_numpy(read_amat(root / f"binarized_mnist_{suffix}.amat", num_rows=rows))
            y = torch.full((x.shape[0],), -1, dtype=torch.long)
            if split == "test" and x.shape[0] == MNIST_SIZES["test"]:  # the canonical file, in class order
                y = mnist_test_labels()
            splits[split] = (x[: self.limit].float(), y[: self.limit])
        return splits
