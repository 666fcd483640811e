"""Datasets as LightningDataModules that hold their splits in memory.

Each option of the `dataset` config group names one of these classes as its
`datamodule._target_` (`vaelab.data.DigitsDataModule`, `vaelab.data.BinarizedMNISTDataModule`,
`vaelab.data.MNISTDataModule`, `vaelab.data.FashionMNISTDataModule`, `vaelab.data.FreyFacesDataModule`,
`vaelab.data.CaltechSilhouettesDataModule`);
a datamodule class may also provide `SPLIT_SIZES` and `check_files(root)`, which `vaelab.config`
uses to check a config before any data is read.
"""

from vaelab.data.batches import Batch, BatchIndices, BatchLoader, InMemoryDataModule, batch_loader
from vaelab.data.binarized_mnist import (
    MNIST_SIZES,
    BinarizedMNISTDataModule,
    mnist_test_labels,
    read_amat,
    resolve_data_root,
)
from vaelab.data.caltech_silhouettes import CaltechSilhouettesDataModule
from vaelab.data.digits import DigitsDataModule
from vaelab.data.frey_faces import FreyFacesDataModule, read_frey_faces
from vaelab.data.idx import read_idx
from vaelab.data.mnist import DynamicBinarization, FashionMNISTDataModule, MNISTDataModule

__all__ = [
    "MNIST_SIZES",
    "Batch",
    "BatchIndices",
    "BatchLoader",
    "BinarizedMNISTDataModule",
    "CaltechSilhouettesDataModule",
    "DigitsDataModule",
    "DynamicBinarization",
    "FashionMNISTDataModule",
    "FreyFacesDataModule",
    "InMemoryDataModule",
    "MNISTDataModule",
    "batch_loader",
    "mnist_test_labels",
    "read_amat",
    "read_frey_faces",
    "read_idx",
    "resolve_data_root",
]
