"""Datasets as LightningDataModules that hold their splits in memory.

Each option of the `dataset` config group names one of these classes as its
`datamodule._target_` (`vaelab.data.DigitsDataModule`, `vaelab.data.BinarizedMNISTDataModule`);
a datamodule class may also provide `SPLIT_SIZES` and `check_files(root)`, which `vaelab.config`
uses to check a config before any data is read.
"""

from vaelab.data.batches import BatchIndices, BatchLoader, InMemoryDataModule, batch_loader
from vaelab.data.binarized_mnist import (
    MNIST_SIZES,
    BinarizedMNISTDataModule,
    mnist_test_labels,
    read_amat,
    resolve_data_root,
)
from vaelab.data.digits import DigitsDataModule

__all__ = [
    "MNIST_SIZES",
    "BatchIndices",
    "BatchLoader",
    "BinarizedMNISTDataModule",
    "DigitsDataModule",
    "InMemoryDataModule",
    "batch_loader",
    "mnist_test_labels",
    "read_amat",
    "resolve_data_root",
]
