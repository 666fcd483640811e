"""Frey Faces: 1965 grey-level 28x20 frames of one face (Kingma & Welling, 2014; the VampPrior paper).

The file is the VampPrior code's `freyfaces.pkl`, a Python 2 pickle of a list holding one uint8
array (1965, 560). Its md5 is checked before it is unpickled, and the unpickler accepts only the
numpy classes such an array needs, so reading it runs no other code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch

from vaelab.data.batches import InMemoryDataModule
from vaelab.data.binarized_mnist import resolve_data_root
from vaelab.data.checks import check_md5, check_published_files
from vaelab.errors import DataFormatError

__all__ = ["FreyFacesDataModule", "read_frey_faces"]

FILE, MD5 = "freyfaces.pkl", "8db27fd8d4be5ade7bdb05b488ae8aa2"
NUM_IMAGES, SHAPE = 1965, (28, 20)
# What a pickled numpy array of Python 2 needs, and nothing else.
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a pickled numpy array")
        return super().find_class(module.replace("numpy.core.", "numpy._core."), name)


def read_frey_faces(path: str | Path, md5: str | None = MD5) -> np.ndarray:
    """The (1965, 560) uint8 array of `freyfaces.pkl`, its md5 checked first (None: not checked)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: file not found (expected the Frey Faces pickle {FILE})")
    data = path.read_bytes()
    if md5 is not None:
        check_md5(path, md5, data)
    try:
        loaded = _ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as error:  # noqa: BLE001 - whatever a damaged pickle raises, said in one line
        raise DataFormatError(f"{path}: not the Frey Faces pickle ({type(error).__name__}: {error})") from None
    array = loaded[0] if isinstance(loaded, (list, tuple)) and loaded else loaded
    expected = (NUM_IMAGES, SHAPE[0] * SHAPE[1])
    if not isinstance(array, np.ndarray) or array.shape != expected or array.dtype != np.uint8:
        found = f"{array.shape} {array.dtype}" if isinstance(array, np.ndarray) else type(array).__name__
        raise DataFormatError(f"{path}: expected a uint8 array of shape {expected}, found {found}")
    return array


class FreyFacesDataModule(InMemoryDataModule):
    """Frey Faces as grey levels 0..255, split 1565 / 200 / 200 after a shuffle seeded by
    `split_seed` (the VampPrior paper's sizes; its own shuffle was not seeded, so its split cannot be
    reproduced). No labels (y = -1)."""

    SPLIT_SIZES = {"train": 1565, "val": 200, "test": 200}

    def __init__(self, root: str | Path, split_seed: int = 0, batch_size: int = 100, eval_batch_size: int = 1000):
        super().__init__(batch_size, eval_batch_size)
        self.root, self.split_seed = root, split_seed

    @staticmethod
    def check_files(root: str | Path) -> None:
        """The folder holds {FILE} with its published md5 (vaelab.config calls this before any work)."""
        check_published_files(root, {FILE: MD5}, "Frey Faces")

    def load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        self.check_files(self.root)
        x = torch.from_numpy(read_frey_faces(resolve_data_root(self.root) / FILE).astype(np.float32))
        order = torch.randperm(NUM_IMAGES, generator=torch.Generator().manual_seed(self.split_seed))
        ends = np.cumsum(list(self.SPLIT_SIZES.values()))
        parts = dict(zip(self.SPLIT_SIZES, (order[: ends[0]], order[ends[0] : ends[1]], order[ends[1] :])))
        return {split: (x[index], torch.full((len(index),), -1, dtype=torch.long)) for split, index in parts.items()}
