"""Statically binarized MNIST (Larochelle & Murray, 2011), the VampPrior paper's benchmark."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vaelab.data.batches import InMemoryDataModule
from vaelab.errors import DataFormatError
from vaelab.rundir import CHECKOUT

__all__ = ["BinarizedMNISTDataModule", "mnist_test_labels", "read_amat", "resolve_data_root"]

AMAT_SPLITS = {"train": "train", "val": "valid", "test": "test"}  # vaelab's split name → the file's suffix
MNIST_SIZES = {"train": 50000, "val": 10000, "test": 10000}
NUM_PIXELS = 784
# The test file is MNIST's test set in class order (verified in ../shared/data/binarized_mnist/README.md):
# these many 0s, then 1s, …; the train and valid files are shuffled and their labels unknown.
MNIST_TEST_CLASS_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)


def mnist_test_labels() -> torch.Tensor:
    """The digit of each of the 10000 binarized MNIST test images, in file order."""
    return torch.repeat_interleave(torch.arange(10), torch.tensor(MNIST_TEST_CLASS_COUNTS))


def read_amat(path: str | Path, num_values: int = NUM_PIXELS, num_rows: int | None = None) -> np.ndarray:
    """The (N, num_values) uint8 array of 0/1 in a `.amat` text file: one image per line.

    Canonical files go through `_parse_canonical` (the whole set in well under a second);
    anything else (CRLF line ends, extra spaces, a bad line) through a line-by-line parse that
    either succeeds or says which line is wrong and how. `num_rows`, if given, is checked too.
    """
    path = Path(path)
    shape = f"({num_rows or 'N'}, {num_values})"
    if not path.is_file():
        raise DataFormatError(f"{path}: file not found (expected a binarized MNIST .amat file of shape {shape})")
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data += b"\n"
    values = _parse_canonical(data, num_values)
    if values is None:
        values = _parse_amat_lines(path, data, num_values, shape)
    if num_rows is not None and values.shape[0] != num_rows:
        raise DataFormatError(f"{path}: expected shape {shape}, found {values.shape[0]} lines of {num_values} values")
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
        raise DataFormatError(f"{path}: {expected}, found an empty file")
    out = np.empty((len(lines), num_values), np.uint8)
    for number, line in enumerate(lines, start=1):
        tokens = line.split()
        if len(tokens) != num_values:
            raise DataFormatError(f"{path}: {expected}, found line {number} with {len(tokens)} values")
        bad = next((token for token in tokens if token not in (b"0", b"1")), None)
        if bad is not None:
            raise DataFormatError(
                f"{path}: {expected}, found the value {bad.decode(errors='replace')!r} on line {number}"
            )
        out[number - 1] = np.frombuffer(b"".join(tokens), np.uint8) - ord("0")
    return out


def resolve_data_root(root: str | Path) -> Path:
    """An absolute root as is; a relative one against the current directory if it exists there,
    else against the vaelab checkout (so `vaelab-train` works from any directory)."""
    root = Path(root).expanduser()
    if root.is_absolute() or root.exists():
        return root
    candidate = CHECKOUT / root
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

    def __init__(
        self,
        root: str | Path,
        batch_size: int = 100,
        eval_batch_size: int = 1000,
        check_sizes: bool = True,
        limit: int | None = None,
    ):
        super().__init__(batch_size, eval_batch_size)
        self.root, self.check_sizes, self.limit = root, check_sizes, limit

    @staticmethod
    def check_files(root: str | Path) -> None:
        """The folder and its three files exist (vaelab.config calls this at start-up; nothing is read)."""
        folder = resolve_data_root(root)
        if not folder.is_dir():
            raise DataFormatError(
                f"dataset.root={str(root)!r} is not allowed: no such folder (looked in {folder.resolve()}); it should hold "
                "binarized_mnist_{train,valid,test}.amat (docs: Configuration, datasets)"
            )
        for split, suffix in AMAT_SPLITS.items():
            path = folder / f"binarized_mnist_{suffix}.amat"
            if not path.is_file():
                raise DataFormatError(
                    f"{path}: file not found (expected a binarized MNIST .amat file of shape "
                    f"({MNIST_SIZES[split]}, {NUM_PIXELS}))"
                )

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
