"""One's own data: a folder of images and an array file, generated here. Their values choose the
likelihood (binary, levels, continuous), labels come from class folders or `y`, splits are given or
drawn with a seed, and anything the readers cannot take is one line naming the file, before any work."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from helpers import SHORT_RUN, compose_config
from helpers.own_data import grey_images, write_images
from PIL import Image

import vaelab
from vaelab.config import check_config, complete_dataset
from vaelab.data import ArrayFileDataModule, ImageFolderDataModule, read_image_folder
from vaelab.errors import ConfigError, DataFormatError


def completed(*overrides):
    cfg = compose_config(*overrides, "run_dir=unused")
    complete_dataset(cfg)
    check_config(cfg, files=False)
    return cfg


def test_a_folder_of_grey_images_in_class_folders_has_levels_labels_and_a_seeded_split(tmp_path):
    images = grey_images()
    classes = [["cat", "dog", "emu"][i % 3] for i in range(len(images))]
    root = write_images(tmp_path / "pictures", images, classes)
    cfg = completed("dataset=images", f"dataset.root={root}")
    assert cfg.dataset.input_dim == 30 and list(cfg.dataset.image_shape) == [6, 5]
    assert (cfg.dataset.input_max, cfg.decoder.likelihood, cfg.decoder.num_levels) == (255, "discretized_logistic", 256)
    splits = ImageFolderDataModule(str(root)).load()
    assert {split: len(x) for split, (x, _) in splits.items()} == {"train": 48, "val": 6, "test": 6}
    x = torch.cat([x for x, _ in splits.values()])
    y = torch.cat([y for _, y in splits.values()])
    assert x.shape == (60, 30) and x.dtype == torch.float32 and x.max() <= 255
    # every image once, with the label of its folder (classes in sorted order: cat 0, dog 1, emu 2)
    expected = {tuple(image.reshape(-1).tolist()): i % 3 for i, image in enumerate(images)}
    assert {tuple(row.int().tolist()): int(label) for row, label in zip(x, y)} == expected
    again = ImageFolderDataModule(str(root)).load()
    other = ImageFolderDataModule(str(root), split_seed=1).load()
    assert torch.equal(again["test"][0], splits["test"][0]) and not torch.equal(other["test"][0], splits["test"][0])


def test_black_and_white_images_are_binary_and_colour_images_keep_three_channels(tmp_path):
    binary = (grey_images() > 127).astype(np.uint8) * 255
    cfg = completed("dataset=images", f"dataset.root={write_images(tmp_path / 'bw', binary)}")
    assert (cfg.dataset.input_max, cfg.decoder.likelihood) == (1, "bernoulli")
    x, y = ImageFolderDataModule(str(tmp_path / "bw")).load()["train"]
    assert set(x.unique().tolist()) == {0.0, 1.0} and (y == -1).all()  # no class folders: no labels

    colour = np.random.default_rng(1).integers(0, 256, size=(20, 4, 3, 3), dtype=np.uint8)
    cfg = completed("dataset=images", f"dataset.root={write_images(tmp_path / 'colour', colour)}")
    assert list(cfg.dataset.image_shape) == [4, 3, 3] and cfg.dataset.input_dim == 36
    data = read_image_folder(tmp_path / "colour")
    assert np.array_equal(np.sort(data.parts["train"][0], axis=0), np.sort(colour, axis=0))

    cfg = completed("dataset=images", f"dataset.root={tmp_path / 'colour'}", "dataset.type=continuous")
    assert (cfg.dataset.input_max, cfg.decoder.likelihood) == (1, "continuous_bernoulli")
    x, _ = ImageFolderDataModule(str(tmp_path / "colour"), type="continuous").load()["train"]
    assert x.min() >= 0 and x.max() <= 1


@pytest.mark.parametrize(
    ("x", "likelihood", "input_max", "num_levels"),
    [
        (np.random.default_rng(0).integers(0, 2, size=(50, 16)).astype(bool), "bernoulli", 1, 2),
        (np.random.default_rng(0).integers(0, 2, size=(50, 16)).astype(np.uint8), "bernoulli", 1, 2),
        (np.random.default_rng(0).integers(0, 17, size=(50, 16)), "discretized_logistic", 16, 17),
        (np.random.default_rng(0).integers(0, 17, size=(50, 16)).astype(np.float64), "discretized_logistic", 16, 17),
        (np.random.default_rng(0).integers(0, 200, size=(50, 16)).astype(np.uint8), "discretized_logistic", 255, 256),
        (np.random.default_rng(0).uniform(size=(50, 16)).astype(np.float32), "continuous_bernoulli", 1, 2),
    ],
    ids=["bool", "uint8 0/1", "int levels", "integral floats", "uint8", "floats in [0, 1]"],
)
def test_the_values_of_an_array_choose_the_likelihood(tmp_path, x, likelihood, input_max, num_levels):
    np.savez(tmp_path / "data.npz", x=x)
    cfg = completed("dataset=arrays", f"dataset.path={tmp_path / 'data.npz'}")
    assert (cfg.decoder.likelihood, cfg.dataset.input_max, cfg.dataset.num_levels) == (
        likelihood,
        input_max,
        num_levels,
    )
    loaded = torch.cat([x for x, _ in ArrayFileDataModule(str(tmp_path / "data.npz")).load().values()])
    assert loaded.min() >= 0 and loaded.max() <= input_max  # in the units the likelihood models
    assert list(cfg.dataset.image_shape) == [4, 4]  # 16 values a row: shown as 4 x 4 images


def test_an_npz_with_its_own_splits_and_labels_keeps_them(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {name: rng.integers(0, 2, size=(n, 3, 7)) for name, n in (("x", 40), ("x_val", 9), ("x_test", 11))}
    labels = {f"y{name[1:]}": rng.integers(0, 4, size=len(x)) for name, x in arrays.items()}
    np.savez(tmp_path / "data.npz", **arrays, **labels)
    cfg = completed("dataset=arrays", f"dataset.path={tmp_path / 'data.npz'}")
    assert list(cfg.dataset.image_shape) == [3, 7] and cfg.decoder.likelihood == "bernoulli"
    splits = ArrayFileDataModule(str(tmp_path / "data.npz")).load()
    for split, suffix in (("train", ""), ("val", "_val"), ("test", "_test")):
        x, y = splits[split]
        assert torch.equal(x, torch.from_numpy(arrays[f"x{suffix}"].reshape(len(x), -1)).float())
        assert torch.equal(y, torch.from_numpy(labels[f"y{suffix}"]))


def test_a_npy_of_flat_rows_that_are_not_square_is_a_strip_or_the_shape_given(tmp_path):
    np.save(tmp_path / "rows.npy", np.random.default_rng(0).uniform(size=(30, 12)))
    cfg = completed("dataset=arrays", f"dataset.path={tmp_path / 'rows.npy'}")
    assert list(cfg.dataset.image_shape) == [1, 12]
    cfg = completed("dataset=arrays", f"dataset.path={tmp_path / 'rows.npy'}", "dataset.image_shape=[3,4]")
    assert list(cfg.dataset.image_shape) == [3, 4]


def damaged(tmp_path, case):
    """(a dataset override, the file the message must name, what it must say) for a damaged input."""
    root = tmp_path / "images"
    if case == "two sizes":
        write_images(root, grey_images(4))
        Image.fromarray(grey_images(1, (7, 5))[0]).save(root / "999.png")
        return (
            f"dataset.root={root}",
            root / "999.png",
            "5x7 pixels, while 000.png has 5x6: the images must have one size",
        )
    if case == "not an image":
        write_images(root, grey_images(4))
        (root / "002.png").write_bytes(b"not a png at all")
        return f"dataset.root={root}", root / "002.png", "not a readable image"
    if case == "16-bit":
        write_images(root, grey_images(4))
        Image.fromarray(np.full((6, 5), 40000, dtype=np.uint16)).save(root / "002.png")
        return f"dataset.root={root}", root / "002.png", "pixels; vaelab reads 8-bit grey or colour images"
    if case == "classes and loose images":
        write_images(root, grey_images(4), ["a", "a", "b", "b"])
        Image.fromarray(grey_images(1)[0]).save(root / "loose.png")
        return f"dataset.root={root}", root, "1 images in the folder itself and 4 in subfolders"
    if case == "no images":
        root.mkdir()
        (root / "notes.txt").write_text("nothing to see")
        return f"dataset.root={root}", root, "no PNG or JPEG images"
    path = tmp_path / "data.npz"
    if case == "no x":
        np.savez(path, images=np.zeros((4, 4)))
        return f"dataset.path={path}", path, "no array named x (it has images)"
    if case == "labels of another length":
        np.savez(path, x=np.zeros((4, 4)), y=np.zeros(3, dtype=int))
        return f"dataset.path={path}", path, "y has shape (3,) and int64 values; expected 4 integer labels"
    if case == "values out of range":
        np.savez(path, x=np.linspace(-1.5, 2.5, 16).reshape(4, 4))
        return f"dataset.path={path}", path, "values in [-1.5, 2.5] are neither integer levels 0..L-1 nor in [0, 1]"
    if case == "objects":
        np.savez(path, x=np.array([{"a": 1}] * 4, dtype=object))
        return f"dataset.path={path}", path, "not a .npz or .npy file numpy can read"
    if case == "truncated":
        np.savez(path, x=np.zeros((40, 40)))
        path.write_bytes(path.read_bytes()[:200])
        return f"dataset.path={path}", path, "not a .npz or .npy file numpy can read"
    raise AssertionError(case)


CASES = ["two sizes", "not an image", "16-bit", "classes and loose images", "no images", "no x",
         "labels of another length", "values out of range", "objects", "truncated"]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_a_damaged_input_is_one_line_naming_the_file_and_no_run_directory(tmp_path, case):
    override, named, says = damaged(tmp_path, case)
    option = "dataset=images" if override.startswith("dataset.root") else "dataset=arrays"
    cfg = compose_config(option, override, *SHORT_RUN, f"run_dir={tmp_path / 'run'}")
    with pytest.raises(DataFormatError) as error:
        vaelab.run(cfg)
    message = str(error.value)
    assert message.startswith(f"{named}: ") and says in message and "\n" not in message, message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (("dataset=images",), "dataset.root=null is not allowed: give a folder: dataset.root=<folder of your data>"),
        (("dataset=arrays",), "dataset.path=null is not allowed: give a file: dataset.path=<file of your data>"),
        (("dataset=arrays", "dataset.path=DATA", "dataset.input_dim=10"),
         "dataset.input_dim=10 is not allowed: the data have 16; leave it null to take it from them"),
        (("dataset=arrays", "dataset.path=DATA", "dataset.type=binary"),
         "dataset.type='binary' is not allowed: DATA has values in [0, 16] (they look like levels: dataset.type=auto)"),
        (("dataset=arrays", "dataset.path=DATA", "prior=vamp", "prior.init=data", "prior.num_components=50"),
         "prior.num_components=50 is not allowed: at most 32 with prior.init=data (the training split has 32 "
         "examples to copy); or prior.init=random"),
        (("dataset=arrays", "dataset.path=DATA", "dataset.val_fraction=0.01"),
         "DATA: 40 examples cannot be split into train, val (0.01), test (0.1): give more examples or other "
         "dataset.val_fraction / dataset.test_fraction"),
        (("dataset=arrays", "dataset.path=DATA", "dataset.type=shades"),
         "dataset.type='shades' is not allowed: choose one of auto, binary, levels, continuous"),
    ],
)  # fmt: skip
def test_a_missing_source_or_a_value_the_data_contradict_is_one_line(tmp_path, overrides, says):
    data = tmp_path / "data.npz"
    np.savez(data, x=np.arange(16 * 40).reshape(40, 16) % 17)
    overrides = [override.replace("DATA", str(data)) for override in overrides]
    cfg = compose_config(*overrides, *SHORT_RUN, f"run_dir={tmp_path / 'run'}")
    with pytest.raises(ConfigError) as error:
        vaelab.run(cfg)
    assert str(error.value) == says.replace("DATA", str(data))
    assert not (tmp_path / "run").exists()


def test_a_short_run_on_colour_images_draws_colour_pictures(tmp_path):
    """Not square, and latent_dim 3: the thumbnails in TensorBoard's projector are squared."""
    colour = np.random.default_rng(2).integers(0, 256, size=(80, 4, 3, 3), dtype=np.uint8)
    root = write_images(tmp_path / "colour", colour, [str(i % 2) for i in range(len(colour))])
    cfg = compose_config(
        "dataset=images",
        f"dataset.root={root}",
        *SHORT_RUN,
        "figures.enabled=true",
        "latent_dim=3",
        f"run_dir={tmp_path / 'run'}",
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="LatentFigures")  # a picture that could not be drawn
        metrics = vaelab.run(cfg)
    (sprite,) = (tmp_path / "run" / "tensorboard").glob("*/latent%2ftest/sprite.png")
    with Image.open(sprite) as image:
        assert image.mode == "RGB" and image.size == (3 * 4, 3 * 4)  # 8 test thumbnails of 4x4, 3 a row
    assert np.isfinite(metrics["test/nll"]) and metrics["test/bpd"] == pytest.approx(
        metrics["test/nll"] / (36 * np.log(2))
    )
    with Image.open(tmp_path / "run" / "samples.png") as samples:
        assert samples.mode == "RGB"
