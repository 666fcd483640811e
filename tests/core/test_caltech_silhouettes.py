"""Caltech 101 Silhouettes: the checked file, binary upright images with 101 labels, and a split of
the papers' sizes stratified by class with a stated seed."""

from __future__ import annotations

import pytest
import torch
from helpers import compose_config

import vaelab
from vaelab.data import CaltechSilhouettesDataModule, resolve_data_root
from vaelab.errors import ConfigError


@pytest.fixture(scope="module")
def root():
    return resolve_data_root(compose_config("dataset=caltech101_silhouettes", "run_dir=unused").dataset.root)


@pytest.fixture(scope="module")
def splits(root):
    return CaltechSilhouettesDataModule(root).load()


@pytest.mark.slow  # reads and splits the real file
def test_the_split_has_the_papers_sizes_binary_images_and_every_class(splits):
    assert {split: tuple(x.shape) for split, (x, _) in splits.items()} == {
        "train": (4100, 784),
        "val": (2264, 784),
        "test": (2307, 784),
    }
    assert all(set(x.unique().tolist()) == {0.0, 1.0} for x, _ in splits.values())
    assert all(y.min() == 0 and y.max() == 100 and len(y.unique()) == 101 for _, y in splits.values())
    everything = torch.cat([x for x, _ in splits.values()])
    assert everything.mean().item() == pytest.approx(0.5439, abs=1e-4)  # the file's mean: every image once


@pytest.mark.slow  # reads and splits the real file
def test_each_class_is_split_in_the_proportions_of_the_whole(splits):
    counts = {split: torch.bincount(y, minlength=101).double() for split, (_, y) in splits.items()}
    total = sum(counts.values())
    for split, count in counts.items():
        share = len(splits[split][1]) / 8671
        assert ((count - share * total).abs() <= 1.5).all(), split


@pytest.mark.slow  # reads and splits the real file
def test_the_split_follows_its_seed(root, splits):
    assert torch.equal(CaltechSilhouettesDataModule(root).load()["test"][0], splits["test"][0])
    assert not torch.equal(CaltechSilhouettesDataModule(root, split_seed=1).load()["test"][0], splits["test"][0])


@pytest.mark.slow  # reads and splits the real file
def test_the_images_are_upright_rows_first(splits):
    """The file stores each image column by column; read row by row, the left and right halves of
    a silhouette differ far less than its top and bottom halves do on average (objects stand on a
    base, and many are left-right symmetric)."""
    x = torch.cat([x for x, _ in splits.values()]).view(-1, 28, 28)
    left_right = (x - x.flip(2)).abs().mean()
    top_bottom = (x - x.flip(1)).abs().mean()
    assert left_right < top_bottom


def test_a_changed_file_is_one_line_before_any_work(tmp_path, root):
    folder = tmp_path / "caltech"
    folder.mkdir()
    (folder / "caltech101_silhouettes_28.mat").write_bytes(b"not a mat file")
    with pytest.raises(ConfigError, match=r"caltech101_silhouettes_28\.mat: md5 .* is not the published"):
        vaelab.run(
            compose_config("dataset=caltech101_silhouettes", f"dataset.root={folder}", f"run_dir={tmp_path / 'run'}")
        )
    assert not (tmp_path / "run").exists()
