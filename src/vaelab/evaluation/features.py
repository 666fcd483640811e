"""The feature space that judges generated samples: a small classifier of the dataset's images.

Sample-quality measures (`vaelab.evaluation.quality`) compare generated and real images in the features of a
network; those features must not come from the VAE being judged (its own encoder would rate its
own samples), so a small MLP classifier (D → 256 → 128 → classes, ReLU) is trained on labelled
images of the dataset and its penultimate layer is the feature space, as FID uses Inception's
(Heusel et al., 2017). It is trained once per dataset, deterministically (its own seed, on the
CPU, in seconds), and cached on disk under a name that hashes the images, labels and settings.

Which images train it, and which are the reference for the samples (`labelled_sets`):

    digits            train split fits it, validation split picks the epoch, test split is the reference
    binarized MNIST   only the test file has labels (MNIST's test set in class order): its even-indexed
                      images fit it (every tenth of them picks the epoch), the odd-indexed ones are
                      the reference, so features are never judged on images the classifier was fitted to
    other datamodules labelled train/val/test splits (y >= 0) are used like digits (dynamically
                      binarized MNIST: its training split binarized once, `fixed_train`); else
                      quality is skipped
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from vaelab.data import MNIST_SIZES, BinarizedMNISTDataModule
from vaelab.files import atomic_write

__all__ = ["FeatureClassifier", "LabelledSets", "QualitySkipped", "labelled_sets", "load_or_train"]

log = logging.getLogger(__name__)

CLASSIFIER = {"hidden": [256, 128], "epochs": 40, "batch_size": 100, "lr": 1e-3, "weight_decay": 1e-4, "seed": 0}
VERSION = 1  # part of the cache key: bump it when the training code changes


class QualitySkipped(Exception):
    """The datamodule has no labelled images to train the feature classifier on."""


@dataclass
class LabelledSets:
    """(x, y) pairs in data units: `train` fits the classifier, `val` picks its epoch, `reference`
    is what generated samples are compared with (and where its held-out accuracy is measured)."""

    name: str
    train: tuple[Tensor, Tensor]
    val: tuple[Tensor, Tensor]
    reference: tuple[Tensor, Tensor]


def labelled_sets(datamodule) -> LabelledSets:
    """The classifier's data for a set-up datamodule; QualitySkipped says why there is none."""
    splits = getattr(datamodule, "splits", None) or {}
    if isinstance(datamodule, BinarizedMNISTDataModule):
        x, y = splits["test"]  # labelled by the data module (the full file is in class order)
        if len(x) != MNIST_SIZES["test"] or (y < 0).any():
            raise QualitySkipped(
                f"the binarized MNIST test split has {len(x)} images, not 10000 (dataset.datamodule."
                "limit?): its labels come from the full file's class order"
            )
        index = torch.arange(len(x))
        fit, val, ref = index[(index % 2 == 0) & (index % 20 != 0)], index[index % 20 == 0], index[index % 2 == 1]
        return LabelledSets("binarized_mnist", (x[fit], y[fit]), (x[val], y[val]), (x[ref], y[ref]))
    if not all(name in splits for name in ("train", "val", "test")):
        raise QualitySkipped(f"{type(datamodule).__name__} has no train, val and test splits")
    for name in ("train", "val", "test"):
        y = splits[name][1]
        if len(y) == 0 or y.is_floating_point() or (y < 0).any():
            raise QualitySkipped(f"{type(datamodule).__name__}'s {name} split has no class labels (y >= 0)")
    if len(splits["train"][1].unique()) < 2:
        raise QualitySkipped(f"{type(datamodule).__name__}'s train split has a single class")
    name = type(datamodule).__name__.removesuffix("DataModule").lower()
    train = datamodule.fixed_train() if hasattr(datamodule, "fixed_train") else splits["train"]
    return LabelledSets(name, train, splits["val"], splits["test"])


class FeatureClassifier(nn.Module):
    """An MLP on images in data units (divided by `scale`); `features` is its penultimate layer."""

    def __init__(self, input_dim: int, num_classes: int, hidden: list[int], scale: float = 1.0):
        super().__init__()
        self.register_buffer("scale", torch.tensor(float(scale)))
        layers, width = [], input_dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.body, self.head = nn.Sequential(*layers), nn.Linear(width, num_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x.float() / self.scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@torch.no_grad()
def accuracy(classifier: FeatureClassifier, x: Tensor, y: Tensor) -> float:
    return (classifier(x).argmax(-1) == y.to(x.device)).double().mean().item()


def train_classifier(sets: LabelledSets, settings: dict = CLASSIFIER) -> tuple[FeatureClassifier, dict]:
    """Adam with weight decay, minibatches in a seeded order; the epoch with the best validation
    accuracy (the earliest of equals) is kept. Deterministic: everything is seeded by
    `settings["seed"]`, on the CPU, and the global random stream is left as it was."""
    (x, y), (x_val, y_val) = sets.train, sets.val
    x, y, x_val, y_val = x.cpu().float(), y.cpu(), x_val.cpu().float(), y_val.cpu()
    num_classes = int(max(y.max(), y_val.max(), sets.reference[1].max())) + 1
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(settings["seed"])
        classifier = FeatureClassifier(
            x.shape[1], num_classes, settings["hidden"], scale=x.abs().max().clamp_min(1e-12)
        )
        optimizer = torch.optim.Adam(classifier.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
        generator = torch.Generator().manual_seed(settings["seed"])
        best = (-1.0, 0, None)  # (validation accuracy, epoch, weights)
        for epoch in range(1, settings["epochs"] + 1):
            for batch in torch.randperm(len(x), generator=generator).split(settings["batch_size"]):
                loss = nn.functional.cross_entropy(classifier(x[batch]), y[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            val_accuracy = accuracy(classifier, x_val, y_val)
            if val_accuracy > best[0]:
                best = (val_accuracy, epoch, {k: v.clone() for k, v in classifier.state_dict().items()})
    classifier.load_state_dict(best[2])
    info = {"val_accuracy": best[0], "epoch": best[1], "num_classes": num_classes, "input_dim": x.shape[1]}
    return classifier.eval(), info


def cache_path(sets: LabelledSets, cache_dir: str | Path, settings: dict = CLASSIFIER) -> Path:
    """`<cache_dir>/classifier_<dataset>_<hash>.pt`, the hash of every image, label and setting
    the classifier depends on: different data or settings never share a file."""
    digest = hashlib.sha256(json.dumps({"version": VERSION, "name": sets.name, **settings}, sort_keys=True).encode())
    for x, y in (sets.train, sets.val, sets.reference):
        digest.update(x.detach().cpu().float().contiguous().numpy().tobytes())
        digest.update(y.detach().cpu().long().contiguous().numpy().tobytes())
    return Path(cache_dir).expanduser() / f"classifier_{sets.name}_{digest.hexdigest()[:16]}.pt"


def load_or_train(
    sets: LabelledSets, cache_dir: str | Path, settings: dict = CLASSIFIER
) -> tuple[FeatureClassifier, dict]:
    """The cached classifier for these sets, or a newly trained one, saved atomically (a
    concurrent run reads the old state or the new one, never half a file). `info["cached"]`
    says which; an unreadable cache file is trained again and replaced."""
    path = cache_path(sets, cache_dir, settings)
    if path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            classifier = FeatureClassifier(saved["info"]["input_dim"], saved["info"]["num_classes"], settings["hidden"])
            classifier.load_state_dict(saved["state_dict"])
            return classifier.eval(), {**saved["info"], "cached": True, "path": str(path)}
        except Exception as error:  # noqa: BLE001 - a truncated or foreign file of any kind
            log.warning("quality: %s is unreadable (%s); training the classifier again", path, type(error).__name__)
    classifier, info = train_classifier(sets, settings)
    atomic_write(path, lambda tmp: torch.save({"state_dict": classifier.state_dict(), "info": info}, tmp))
    return classifier, {**info, "cached": False, "path": str(path)}
