"""Dynamic MNIST and Fashion-MNIST: the published files, the papers' split with labels, and a
binarization drawn afresh for every training batch, the same again after a resume and under data
parallelism; a damaged file is one line naming it, before any work."""

from __future__ import annotations

import gzip
import math
import shutil

import pytest
import torch
from helpers import SHORT_RUN, compose_config

import vaelab
from vaelab.data import (
    BatchIndices,
    DynamicBinarization,
    FashionMNISTDataModule,
    MNISTDataModule,
    batch_loader,
    read_idx,
    resolve_data_root,
)
from vaelab.errors import ConfigError, DataFormatError
from vaelab.evaluation.features import labelled_sets

# (option, class, mean grey level of the first 50000 training images, test images per class)
DATASETS = {
    "mnist": (MNISTDataModule, 0.1310, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]),
    "fashion_mnist": (FashionMNISTDataModule, 0.2855, [1000] * 10),
}


@pytest.fixture(scope="module", params=sorted(DATASETS))
def loaded(request):
    """(option, its config, its splits as loaded)."""
    cfg = compose_config(f"dataset={request.param}", "run_dir=unused")
    datamodule = DATASETS[request.param][0](cfg.dataset.root)
    return request.param, cfg, datamodule.load()


@pytest.mark.slow  # reads the real files: 70000 images, twice
def test_the_splits_have_the_papers_sizes_values_and_labels(loaded):
    name, cfg, splits = loaded
    _, grey_mean, test_counts = DATASETS[name]
    assert {split: len(x) for split, (x, _) in splits.items()} == {"train": 50000, "val": 10000, "test": 10000}
    assert all(x.shape[1] == cfg.dataset.input_dim == 784 for x, _ in splits.values())
    train = splits["train"][0]
    assert train.min() >= 0 and train.max() == 1 and train.mean().item() == pytest.approx(grey_mean, abs=5e-4)
    levels = (train * 255).round()
    assert (levels - train * 255).abs().max() < 1e-3  # grey levels, binarized at every draw
    assert (torch.bincount(levels.long().flatten(), minlength=256) > 0).all()
    for split in ("val", "test"):  # binarized once
        x = splits[split][0]
        assert set(x.unique().tolist()) == {0.0, 1.0}
        assert x.mean().item() == pytest.approx(grey_mean, abs=0.01)
    assert torch.bincount(splits["test"][1], minlength=10).tolist() == test_counts
    assert all(y.min() == 0 and y.max() == 9 for _, y in splits.values())


@pytest.mark.slow  # reads the real files: 70000 images, twice
def test_validation_and_test_are_binarized_the_same_every_time(loaded):
    name, cfg, splits = loaded
    again = DATASETS[name][0](cfg.dataset.root, limit=2000).load()
    for split in ("val", "test"):
        assert torch.equal(again[split][0], splits[split][0][:2000])


def grey(n: int = 512, d: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(n, d, generator=generator), torch.arange(n)


def draws(loader, epochs=(0,)) -> list[torch.Tensor]:
    out = []
    for epoch in epochs:
        loader.sampler.set_epoch(epoch)
        out += [x for x, _ in loader]
    return out


def test_a_batch_is_binarized_afresh_at_every_draw_with_the_grey_level_as_probability():
    x, y = grey()
    dataset = DynamicBinarization(x, y, seed=5)
    first, second = BatchIndices(len(x), 64, shuffle=False), BatchIndices(len(x), 64, shuffle=False)
    second.set_epoch(1)  # the same images, drawn again in the next epoch
    a, b = next(iter(first)), next(iter(second))
    assert list(a) == list(b)
    assert not torch.equal(dataset[a][0], dataset[b][0])
    assert torch.equal(dataset[a][0], DynamicBinarization(x, y, seed=5)[a][0])  # reproducible from the seed
    assert not torch.equal(dataset[a][0], DynamicBinarization(x, y, seed=6)[a][0])
    # Over 400 draws the mean of each pixel is its grey level (5 standard errors).
    indices = BatchIndices(len(x), len(x), shuffle=False)
    total = torch.zeros_like(x)
    for epoch in range(400):
        indices.set_epoch(epoch)
        batch = next(iter(indices))
        total += dataset[batch][0]
    error = (total / 400 - x).abs() / (x * (1 - x) / 400).sqrt().clamp_min(1e-3)
    assert error.max() < 5


def test_data_parallel_processes_draw_the_slices_of_the_single_process_batch():
    x, y = grey()
    dataset = DynamicBinarization(x, y, seed=3)
    single = [dataset[batch][0] for batch in BatchIndices(len(x), 100, shuffle=True, seed=3)]
    ranks = [BatchIndices(len(x), 100, shuffle=True, seed=3, rank=r, world_size=2) for r in range(2)]
    split = [torch.cat([dataset[a][0], dataset[b][0]]) for a, b in zip(*ranks)]
    assert len(split) == len(single) and all(torch.equal(s, t) for s, t in zip(split, single))


def test_a_resumed_loader_draws_the_binarized_batches_of_the_uninterrupted_one():
    x, y = grey()

    def loader():
        return batch_loader(x, y, 64, shuffle=True, seed=9, dataset=DynamicBinarization(x, y, seed=9))

    whole = draws(loader(), epochs=(0, 1))
    stopped = loader()
    stopped.sampler.set_epoch(1)
    iterator = iter(stopped)
    seen = [next(iterator)[0] for _ in range(3)]
    resumed = loader()
    resumed.load_state_dict(stopped.state_dict())
    resumed.sampler.set_epoch(1)
    rest = [batch for batch, _ in resumed]
    assert all(torch.equal(a, b) for a, b in zip(seen + rest, whole[8:], strict=True))


@pytest.mark.slow  # copies the real files
@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("truncate", "md5 .* is not the published"),
        ("remove", "file not found"),
    ],
)
def test_a_damaged_or_missing_file_is_one_line_naming_it_and_no_run_directory(tmp_path, damage, says):
    source = resolve_data_root(compose_config("dataset=mnist", "run_dir=unused").dataset.root)
    root = shutil.copytree(source, tmp_path / "mnist")
    labels = root / "train-labels-idx1-ubyte.gz"
    if damage == "truncate":
        labels.write_bytes(labels.read_bytes()[:1000])
    else:
        labels.unlink()
    with pytest.raises(ConfigError, match=f"^{labels}: {says}") as error:
        vaelab.run(compose_config("dataset=mnist", f"dataset.root={root}", f"run_dir={tmp_path / 'run'}"))
    assert "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "not a complete gzip file"),  # truncated
        (b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + bytes(5), "the header says 5, expected an IDX file of 3 bytes"),
        (b"\x00\x00\x08\x03" + (3).to_bytes(4, "big") + bytes(3), "IDX magic number 0x00000803 is not 0x00000801"),
        (b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + bytes(2), "2 bytes of data after the header, expected 3"),
    ],
)
def test_a_file_that_is_not_the_idx_it_should_be_says_what_is_wrong(tmp_path, content, says):
    path = tmp_path / "labels.gz"
    path.write_bytes(
        gzip.compress(b"\x00\x00\x08\x01" + bytes(100))[:20] if content is None else gzip.compress(content)
    )
    with pytest.raises(DataFormatError, match=f"^{path}: {says}"):
        read_idx(path, (3,))
    assert read_idx(
        _write(tmp_path / "good.gz", b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"\x01\x02\x03"), (3,)
    ).tolist() == [1, 2, 3]


def _write(path, content: bytes):
    path.write_bytes(gzip.compress(content))
    return path


def test_binarize_false_alone_switches_to_grey_levels_and_their_likelihood():
    cfg = compose_config("dataset=fashion_mnist", "dataset.binarize=false", "run_dir=unused")
    assert cfg.dataset.input_max == 255 and cfg.encoder.input_scale == 255
    assert cfg.decoder.likelihood == "discretized_logistic" and cfg.decoder.num_levels == 256
    binary = compose_config("dataset=fashion_mnist", "run_dir=unused")
    assert binary.dataset.input_max == 1 and binary.decoder.likelihood == "bernoulli"


@pytest.mark.slow  # reads the real files
def test_a_short_run_on_grey_level_mnist_reports_nats_and_bits_per_dimension(tmp_path):
    cfg = compose_config(
        "dataset=mnist",
        "dataset.binarize=false",
        "dataset.datamodule.limit=256",
        *SHORT_RUN,
        f"run_dir={tmp_path / 'run'}",
    )
    metrics = vaelab.run(cfg)
    assert cfg.decoder.likelihood == "discretized_logistic" and math.isfinite(metrics["test/bpd"])
    assert metrics["test/bpd"] == pytest.approx(metrics["test/nll"] / (784 * math.log(2)))


def test_the_quality_classifier_learns_on_one_fixed_binarization_of_the_training_split():
    generator = torch.Generator().manual_seed(0)
    grey = torch.rand(30, 784, generator=generator)
    labels = torch.arange(30) % 10
    for binarize in (True, False):
        datamodule = MNISTDataModule("unused", binarize=binarize)
        datamodule.splits = {split: (grey, labels) for split in ("train", "val", "test")}
        first, again = labelled_sets(datamodule).train, labelled_sets(datamodule).train
        assert torch.equal(first[0], again[0]) and torch.equal(first[1], labels)
        if binarize:
            assert set(first[0].unique().tolist()) == {0.0, 1.0}
            assert abs(first[0].mean() - grey.mean()) < 0.02  # a draw with the grey level as probability
        else:
            assert torch.equal(first[0], grey)
