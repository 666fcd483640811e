"""The feature classifier of the sample-quality measures: trained once and cached, deterministic,
accurate, retrained when its cache file is corrupt, and fair on MNIST (fitted on even test images,
compared with the odd ones)."""

from __future__ import annotations

import pytest
import torch

from vaelab.data import BinarizedMNISTDataModule, DigitsDataModule, mnist_test_labels
from vaelab.evaluation import features


@pytest.fixture(scope="module")
def digits_sets():
    datamodule = DigitsDataModule()
    datamodule.setup()
    return features.labelled_sets(datamodule)


@pytest.fixture(scope="module")
def trained_into(digits_sets, tmp_path_factory):
    """A classifier trained by `load_or_train` into an empty cache folder: (folder, classifier, info)."""
    folder = tmp_path_factory.mktemp("classifiers")
    classifier, info = features.load_or_train(digits_sets, folder)
    return folder, classifier, info


def test_the_classifier_is_trained_once_then_read_from_the_cache_and_is_accurate(digits_sets, trained_into):
    folder, first, info = trained_into
    path = features.cache_path(digits_sets, folder)
    assert not info["cached"] and path.is_file() and info["path"] == str(path)
    stamp = path.stat().st_mtime_ns
    second, info = features.load_or_train(digits_sets, folder)
    assert info["cached"] and path.stat().st_mtime_ns == stamp  # not trained, not rewritten
    x = digits_sets.reference[0]
    assert torch.equal(first.features(x), second.features(x))
    assert features.accuracy(second, *digits_sets.reference) > 0.85  # held out: the test split
    assert list(folder.iterdir()) == [path]  # the temporary file was renamed over it


def test_the_classifier_is_deterministic_and_its_cache_key_follows_the_data(digits_sets, trained_into, tmp_path):
    a = trained_into[1]  # trained by load_or_train, through train_classifier
    b, _ = features.train_classifier(digits_sets)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    x, y = digits_sets.train
    changed = features.LabelledSets("digits", (x.flip(0), y.flip(0)), digits_sets.val, digits_sets.reference)
    assert features.cache_path(changed, tmp_path) != features.cache_path(digits_sets, tmp_path)
    assert features.cache_path(digits_sets, tmp_path, {**features.CLASSIFIER, "epochs": 5}) != features.cache_path(
        digits_sets, tmp_path
    )


def test_a_corrupt_cache_file_is_trained_again(digits_sets, tmp_path):
    path = features.cache_path(digits_sets, tmp_path)
    path.write_bytes(b"not a checkpoint")
    _, info = features.load_or_train(digits_sets, tmp_path)
    assert not info["cached"] and features.load_or_train(digits_sets, tmp_path)[1]["cached"]


def test_mnist_fits_the_classifier_on_even_test_images_and_compares_with_the_odd_ones():
    labels = mnist_test_labels()
    assert len(labels) == 10000 and labels[0] == 0 and labels[-1] == 9 and (labels.diff() >= 0).all()
    datamodule = BinarizedMNISTDataModule(root="unused")
    x = torch.arange(10000.0)[:, None].expand(-1, 784)  # image i holds the value i: the indices show
    datamodule.splits = {"test": (x, labels)}  # as BinarizedMNISTDataModule.load labels the full test file
    sets = features.labelled_sets(datamodule)
    fit, val, ref = (part[0][:, 0].long() for part in (sets.train, sets.val, sets.reference))
    assert (fit % 2 == 0).all() and (val % 2 == 0).all() and (ref % 2 == 1).all()
    assert (len(fit), len(val), len(ref)) == (4500, 500, 5000) and not set(fit.tolist()) & set(val.tolist())
    assert torch.equal(sets.reference[1], labels[ref])
    datamodule.splits = {"test": (x[:100], torch.full((100,), -1))}  # dataset.datamodule.limit=100
    with pytest.raises(features.QualitySkipped, match="100 images, not 10000"):
        features.labelled_sets(datamodule)
