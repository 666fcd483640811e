"""Statically binarized MNIST: the loader is specified on small `.amat` files written here; the real
files are checked when `../shared/data/binarized_mnist` (next to the repository) exists."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import ROOT

from vaelab.data import BinarizedMNISTDataModule, read_amat, resolve_data_root
from vaelab.errors import ConfigError, DataFormatError
from vaelab.training.latent_figures import LatentFigures

REAL_ROOT = ROOT.parent / "shared" / "data" / "binarized_mnist"


def write_amat(path, rows: np.ndarray, line_end: str = "\n") -> None:
    path.write_text("".join(" ".join(str(v) for v in row) + line_end for row in rows))


@pytest.fixture
def bits() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 2, size=(7, 784), dtype=np.uint8)


def test_amat_file_reads_as_uint8_zeros_and_ones(tmp_path, bits):
    write_amat(tmp_path / "a.amat", bits)
    x = read_amat(tmp_path / "a.amat")
    assert x.shape == (7, 784) and x.dtype == np.uint8
    np.testing.assert_array_equal(x, bits)


@pytest.mark.parametrize("line_end", ["\r\n", " \n"], ids=["crlf", "trailing-space"])
def test_amat_variants_of_whitespace_read_the_same(tmp_path, bits, line_end):
    write_amat(tmp_path / "a.amat", bits, line_end)
    np.testing.assert_array_equal(read_amat(tmp_path / "a.amat"), bits)


def test_amat_without_final_newline_reads_the_same(tmp_path, bits):
    write_amat(tmp_path / "a.amat", bits)
    (tmp_path / "a.amat").write_bytes((tmp_path / "a.amat").read_bytes().rstrip(b"\n"))
    np.testing.assert_array_equal(read_amat(tmp_path / "a.amat"), bits)


def test_missing_file_names_the_file_and_expected_shape(tmp_path):
    with pytest.raises(DataFormatError, match=r"nowhere\.amat: file not found .*\(10000, 784\)"):
        read_amat(tmp_path / "nowhere.amat", num_rows=10000)


def test_short_line_says_which_line_and_how_many_values(tmp_path, bits):
    lines = [" ".join(map(str, row)) for row in bits]
    lines[3] = lines[3][:-2]  # line 4 loses its last value
    (tmp_path / "a.amat").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"a\.amat: expected shape \(N, 784\).*line 4 with 783 values"):
        read_amat(tmp_path / "a.amat")


def test_non_binary_value_says_which_value_and_line(tmp_path, bits):
    lines = [" ".join(map(str, row)) for row in bits]
    lines[1] = "2" + lines[1][1:]
    (tmp_path / "a.amat").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"a\.amat: .*value '2' on line 2"):
        read_amat(tmp_path / "a.amat")


def test_wrong_number_of_images_gives_expected_and_found_shape(tmp_path, bits):
    write_amat(tmp_path / "a.amat", bits)
    with pytest.raises(DataFormatError, match=r"expected shape \(10000, 784\), found 7 lines"):
        read_amat(tmp_path / "a.amat", num_rows=10000)


def test_empty_file_is_an_error(tmp_path):
    (tmp_path / "a.amat").write_text("")
    with pytest.raises(DataFormatError, match="empty file"):
        read_amat(tmp_path / "a.amat")


def test_datamodule_reads_three_splits_without_labels(tmp_path, bits):
    for index, suffix in enumerate(["train", "valid", "test"]):
        write_amat(tmp_path / f"binarized_mnist_{suffix}.amat", bits[: 3 + index])
    module = BinarizedMNISTDataModule(tmp_path, batch_size=2, check_sizes=False)
    module.setup("fit")
    assert {split: len(x) for split, (x, _) in module.splits.items()} == {"train": 3, "val": 4, "test": 5}
    limited = BinarizedMNISTDataModule(tmp_path, check_sizes=False, limit=4)
    limited.setup("fit")
    assert {split: len(x) for split, (x, _) in limited.splits.items()} == {"train": 3, "val": 4, "test": 4}
    x, y = module.splits["train"]
    assert x.dtype == torch.float32 and torch.equal(x, torch.from_numpy(bits[:3]).float())
    assert (y == -1).all()
    assert (module.splits["test"][1] == -1).all()  # not the 10000 canonical test images: no labels
    assert next(iter(module.train_dataloader()))[0].shape == (2, 784)


def test_datamodule_insists_on_the_canonical_sizes(tmp_path, bits):
    for suffix in ["train", "valid", "test"]:
        write_amat(tmp_path / f"binarized_mnist_{suffix}.amat", bits)
    with pytest.raises(DataFormatError, match=r"binarized_mnist_train\.amat: expected shape \(50000, 784\)"):
        BinarizedMNISTDataModule(tmp_path).setup("fit")


def test_missing_root_is_a_config_error_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match="dataset.root=.*no such folder"):
        BinarizedMNISTDataModule(tmp_path / "absent").setup("fit")


def test_relative_root_falls_back_to_the_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_data_root("conf") == ROOT / "conf"  # not in the cwd: found in the checkout
    (tmp_path / "conf").mkdir()
    assert resolve_data_root("conf") == Path("conf")  # in the cwd: that one
    assert resolve_data_root(tmp_path / "absent") == tmp_path / "absent"  # absolute: as given


@pytest.mark.slow  # reads the real files, 100 MB of text
@pytest.mark.skipif(not REAL_ROOT.is_dir(), reason=f"no binarized MNIST at {REAL_ROOT}")
def test_real_files_have_canonical_counts_and_mean_pixel():
    module = BinarizedMNISTDataModule(REAL_ROOT)
    module.setup("fit")
    sizes = {split: tuple(x.shape) for split, (x, _) in module.splits.items()}
    assert sizes == {"train": (50000, 784), "val": (10000, 784), "test": (10000, 784)}
    for split, (x, _) in module.splits.items():
        assert set(x.unique().tolist()) == {0.0, 1.0}
        assert x.mean().item() == pytest.approx(0.13, abs=0.005), split


@pytest.mark.slow  # reads the real files, 100 MB of text
@pytest.mark.skipif(not REAL_ROOT.is_dir(), reason=f"no binarized MNIST at {REAL_ROOT}")
def test_real_test_images_carry_their_digits_and_the_latent_figure_gets_all_ten():
    """The test file is MNIST's test set in class order; train and valid labels are unknown (-1)."""
    module = BinarizedMNISTDataModule(REAL_ROOT)
    module.setup("fit")
    counts = np.bincount(module.splits["test"][1].numpy(), minlength=10)
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert (module.splits["train"][1] == -1).all() and (module.splits["val"][1] == -1).all()
    trainer = SimpleNamespace(datamodule=module)
    x, y = LatentFigures(max_points=2000).test_data(trainer)  # spread over the split, not the first 2000
    assert len(x) == 2000 and np.bincount(y.numpy()).min() > 150 and set(y.tolist()) == set(range(10))
    limited = BinarizedMNISTDataModule(REAL_ROOT, limit=1500)
    limited.setup("test")
    assert limited.splits["test"][1].tolist() == [0] * 980 + [1] * 520  # the first N keep their labels
