"""Datasets as LightningDataModules that hold their splits in memory.

Each option of the `dataset` config group names one of these classes as its
`datamodule._target_` (`vaelab.data.DigitsDataModule`, `vaelab.data.BinarizedMNISTDataModule`,
`vaelab.data.MNISTDataModule`, `vaelab.data.FashionMNISTDataModule`, `vaelab.data.FreyFacesDataModule`,
`vaelab.data.CaltechSilhouettesDataModule`, and for one's own data `vaelab.data.ImageFolderDataModule`
and `vaelab.data.ArrayFileDataModule`);
a datamodule class may also provide `SPLIT_SIZES` and `check_files(root)`, which `vaelab.config`
uses to check a config before any data is read, and `describe(**settings)`, the dataset keys its
data decide, which `vaelab.config.complete_dataset` fills in where the config leaves them null.
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
from vaelab.data.own import ArrayFileDataModule, ImageFolderDataModule, read_array_file, read_image_folder

__all__ = [
    "MNIST_SIZES",
    "ArrayFileDataModule",
    "Batch",
    "BatchIndices",
    "BatchLoader",
    "BinarizedMNISTDataModule",
    "CaltechSilhouettesDataModule",
    "DigitsDataModule",
    "DynamicBinarization",
    "FashionMNISTDataModule",
    "FreyFacesDataModule",
    "ImageFolderDataModule",
    "InMemoryDataModule",
    "MNISTDataModule",
    "batch_loader",
    "mnist_test_labels",
    "read_array_file",
    "read_amat",
    "read_frey_faces",
    "read_idx",
    "read_image_folder",
    "resolve_data_root",
]
