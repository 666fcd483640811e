"""Your own data: a folder of images (`dataset=images`) or an array file (`dataset=arrays`).

What the values are chooses the likelihood, unless `dataset.type` says it:

    binary      every value 0 or 1 (images: 0 or 255)    bernoulli             input_max 1
    levels      integers 0..L-1 (8-bit images: L = 256)   discretized_logistic  input_max L-1
    continuous  floats in [0, 1]                          continuous_bernoulli  input_max 1

A folder holds PNG or JPEG images of one size, grey or colour (a colour image makes every image
colour); when every image sits in a subfolder, the subfolders are the classes (labels 0, 1, ... in
the order of their sorted names). An array file is a `.npz` with `x` (N, D), (N, H, W) or
(N, H, W, C) and optionally `y` (N,) integer labels, `x_val`/`y_val` and `x_test`/`y_test`; or a
`.npy` holding `x` alone. Splits that are not given are drawn from `x` by a shuffle seeded by
`split_seed`: `val_fraction` and `test_fraction` of it.

`describe` reads the data and gives the dataset keys a config needs before a model is built
(`vaelab.config.complete_dataset` fills them in where they are null); the data read are kept for
the datamodule that loads them next.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab.config.keys import DATA_TYPES as TYPES
from vaelab.data.batches import InMemoryDataModule
from vaelab.errors import DataFormatError

__all__ = ["TYPES", "ArrayFileDataModule", "ImageFolderDataModule", "OwnData", "read_array_file", "read_image_folder"]

LIKELIHOOD = {"binary": "bernoulli", "levels": "discretized_logistic", "continuous": "continuous_bernoulli"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class OwnData:
    """Data as read: `parts` maps "train" (all of x when no split is given), and "val" and "test"
    where the file gives them, to (x (N, ...) numpy values as stored, y (N,) int64 labels, -1 for none)."""

    source: Path
    parts: dict[str, tuple[np.ndarray, np.ndarray]]
    image_shape: list[int]  # (H, W) grey or (H, W, C) colour; (1, D) for flat vectors that are not square
    classes: list[str]  # the label names (class folders), empty where there are no labels
    eight_bit: bool  # uint8 values (images): 256 levels whatever the largest value present

    def values(self) -> np.ndarray:
        return np.concatenate([x.reshape(len(x), -1) for x, _ in self.parts.values()])


def _typed(data: OwnData, requested: str) -> tuple[str, int, int]:
    """(type, input_max, num_levels) of the data: `requested` checked against the values, or detected."""
    if requested not in TYPES:
        raise DataFormatError(f"dataset.type={requested!r} is not allowed: choose one of {', '.join(TYPES)}")
    values = data.values()
    if values.dtype == bool:
        values = values.astype(np.uint8)
    if not np.isfinite(values).all():
        raise DataFormatError(f"{data.source}: the values are not all finite (NaN or infinity)")
    low, high = values.min(), values.max()
    # 0/1 anywhere, or black and white 0/255 in 8-bit data (images)
    binary = np.isin(values, (0, 1)).all() or (data.eight_bit and np.isin(values, (0, 255)).all())
    integral = np.issubdtype(values.dtype, np.integer) or bool((values == np.round(values)).all())
    levels = (256 if data.eight_bit else int(high) + 1) if integral and low >= 0 else None
    in_unit = low >= 0 and high <= (255 if data.eight_bit else 1)
    found = "binary" if binary else "levels" if levels and levels >= 2 else "continuous" if in_unit else None
    if requested == "auto":
        if found is None:
            raise DataFormatError(
                f"{data.source}: values in [{low:g}, {high:g}] are neither integer levels 0..L-1 nor in [0, 1]: "
                "scale them to [0, 1] or round them to levels"
            )
        requested = found
    allowed = {"binary": binary, "levels": levels is not None and levels >= 2, "continuous": in_unit}[requested]
    if not allowed:
        raise DataFormatError(
            f"dataset.type={requested!r} is not allowed: {data.source} has values in [{low:g}, {high:g}]"
            + (f" (they look like {found}: dataset.type=auto)" if found else "")
        )
    num_levels = levels if requested == "levels" else 2  # (unused by the Bernoulli densities)
    return requested, {"binary": 1, "levels": num_levels - 1, "continuous": 1}[requested], num_levels


def _as_type(x: np.ndarray, data: OwnData, data_type: str) -> torch.Tensor:
    """(N, D) float32 values in the type's units: 0/1, levels 0..L-1 or [0, 1]."""
    flat = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32))
    if data_type == "binary":
        return (flat > 0).float()  # 0/1 or 0/255
    if data.eight_bit and data_type == "continuous":
        return flat / 255
    return flat


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # with the images: the rest of vaelab.data does not need it

    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                raise DataFormatError(f"{path}: {image.mode} pixels; vaelab reads 8-bit grey or colour images")
            grey = image.mode in ("1", "L", "LA") or (image.mode == "P" and image.palette.mode == "L")
            return np.asarray(image.convert("L" if grey else "RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise DataFormatError(f"{path}: not a readable image ({error})") from None


def read_image_folder(root: str | Path) -> OwnData:
    """The PNG and JPEG images under `root` (see the module docstring), as uint8 arrays."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataFormatError(f"{root}: no such folder (dataset.root: a folder of PNG or JPEG images)")
    files = sorted(
        path
        for path in root.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() and not path.name.startswith(".")
    )
    if not files:
        raise DataFormatError(f"{root}: no PNG or JPEG images in the folder or its subfolders")
    classed = [len(path.relative_to(root).parts) > 1 for path in files]
    if any(classed) and not all(classed):
        raise DataFormatError(
            f"{root}: {classed.count(False)} images in the folder itself and {classed.count(True)} in subfolders: "
            "put every image in a class subfolder, or none"
        )
    images = [_read_image(path) for path in files]
    shape = images[0].shape[:2]
    for path, image in zip(files, images, strict=True):
        if image.shape[:2] != shape:
            raise DataFormatError(
                f"{path}: {image.shape[1]}x{image.shape[0]} pixels, while {files[0].name} has "
                f"{shape[1]}x{shape[0]}: the images must have one size"
            )
    colour = any(image.ndim == 3 for image in images)
    if colour:
        images = [image if image.ndim == 3 else np.repeat(image[..., None], 3, -1) for image in images]
    x = np.stack(images)
    classes = sorted({path.relative_to(root).parts[0] for path in files}) if all(classed) else []
    index = {name: i for i, name in enumerate(classes)}
    y = np.array([index[path.relative_to(root).parts[0]] if classes else -1 for path in files], dtype=np.int64)
    return OwnData(root, {"train": (x, y)}, list(x.shape[1:]), classes, eight_bit=True)


def read_array_file(path: str | Path) -> OwnData:
    """The arrays of a `.npz` (or the one array of a `.npy`), checked (see the module docstring)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataFormatError(f"{path}: file not found (dataset.path: a .npz or .npy file)")
    try:
        # From memory (no file left open by a damaged archive), and no pickles: reading runs no code.
        loaded = np.load(io.BytesIO(path.read_bytes()), allow_pickle=False)
        if isinstance(loaded, np.ndarray):  # a .npy: the array itself
            arrays = {"x": loaded}
        else:
            with loaded:
                arrays = {key: loaded[key] for key in loaded.files}
    except Exception as error:  # noqa: BLE001 - whatever a damaged file raises, said in one line
        raise DataFormatError(
            f"{path}: not a .npz or .npy file numpy can read ({type(error).__name__}: {error})"
        ) from None
    if "x" not in arrays:
        raise DataFormatError(
            f"{path}: no array named x (it has {', '.join(sorted(arrays)) or 'none'}): "
            "name the data x, and optionally the labels y, x_val, y_val, x_test, y_test"
        )
    x = arrays["x"]
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim not in (2, 3, 4) or (x.ndim == 4 and x.shape[-1] != 3) or len(x) == 0:
        raise DataFormatError(f"{path}: x has shape {x.shape}; expected (N, D), (N, H, W) or (N, H, W, 3)")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataFormatError(f"{path}: x holds {x.dtype} values; expected numbers")
    parts = {}
    for split, suffix in (("train", ""), ("val", "_val"), ("test", "_test")):
        if f"x{suffix}" not in arrays:
            if f"y{suffix}" in arrays:
                raise DataFormatError(f"{path}: y{suffix} without x{suffix}")
            continue
        xs = arrays[f"x{suffix}"].reshape(-1, *x.shape[1:]) if suffix else x
        if suffix and arrays[f"x{suffix}"].size != len(xs) * math.prod(x.shape[1:]):
            raise DataFormatError(f"{path}: x{suffix} has shape {arrays[f'x{suffix}'].shape}, x has {x.shape}")
        y = arrays.get(f"y{suffix}")
        if y is None:
            y = np.full(len(xs), -1, dtype=np.int64)
        elif y.shape != (len(xs),) or not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
            raise DataFormatError(
                f"{path}: y{suffix} has shape {y.shape} and {y.dtype} values; "
                f"expected {len(xs)} integer labels >= 0, one per row of x{suffix}"
            )
        parts[split] = xs, y.astype(np.int64)
    labelled = [(y >= 0).all() for _, y in parts.values()]
    classes = [str(c) for c in range(int(max(y.max() for _, y in parts.values())) + 1)] if all(labelled) else []
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        shape = [side, side] if side * side == x.shape[1] else [1, x.shape[1]]
    else:
        shape = list(x.shape[1:])
    return OwnData(path, parts, shape, classes, eight_bit=x.dtype == np.uint8)


_READ: dict[tuple, OwnData] = {}  # the last data read, for the datamodule that loads what describe read


def _signature(source: Path) -> tuple:
    files = sorted(source.rglob("*")) if source.is_dir() else [source]
    return tuple((str(path), path.stat().st_mtime_ns, path.stat().st_size) for path in files if path.is_file())


def _read(kind: str, source: str | Path) -> OwnData:
    reader = read_image_folder if kind == "images" else read_array_file
    path = Path(source).expanduser()
    key = (kind, str(path.resolve()), _signature(path)) if path.exists() else None
    if key is None or key not in _READ:
        data = reader(path)
        if key is None:
            return data
        _READ.clear()
        _READ[key] = data
    return _READ[key]


class _OwnDataModule(InMemoryDataModule):
    """The splits of one's own data as the config's type has them: the given splits, the others
    drawn from x by a shuffle seeded by `split_seed`."""

    KIND = ""

    def __init__(
        self,
        source: str | Path,
        type: str = "auto",
        split_seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int = 100,
        eval_batch_size: int = 1000,
    ):
        super().__init__(batch_size, eval_batch_size)
        self.source, self.type, self.split_seed = source, type, split_seed
        self.fractions = {"val": val_fraction, "test": test_fraction}

    @classmethod
    def describe(cls, **settings: Any) -> dict[str, Any]:
        """The dataset keys the data decide (input_dim, image_shape, input_min, input_max,
        likelihood, num_levels), and `train_size`, the number of training examples."""
        module = cls(**settings)
        data = _read(cls.KIND, module.source)
        data_type, input_max, num_levels = _typed(data, module.type)
        return {
            "input_dim": math.prod(data.image_shape),
            "image_shape": data.image_shape,
            "input_min": 0,
            "input_max": input_max,
            "likelihood": LIKELIHOOD[data_type],
            "num_levels": num_levels,
            "train_size": len(data.parts["train"][0]) - sum(module._drawn(data).values()),
        }

    def _drawn(self, data: OwnData) -> dict[str, int]:
        """How many examples the splits the data do not give take from x."""
        x = data.parts["train"][0]
        missing = [split for split in ("val", "test") if split not in data.parts]
        counts = {split: round(self.fractions[split] * len(x)) for split in missing}
        if any(count < 1 for count in counts.values()) or sum(counts.values()) >= len(x):
            raise DataFormatError(
                f"{data.source}: {len(x)} examples cannot be split into train, "
                + ", ".join(f"{split} ({self.fractions[split]:g})" for split in missing)
                + ": give more examples or other dataset.val_fraction / dataset.test_fraction"
            )
        return counts

    def load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        data = _read(self.KIND, self.source)
        data_type, _, _ = _typed(data, self.type)
        x, y = data.parts["train"]
        counts = self._drawn(data)
        missing = list(counts)
        order = np.random.default_rng(self.split_seed).permutation(len(x)) if missing else np.arange(len(x))
        parts, start = {}, 0
        for split in missing:
            parts[split] = x[order[start : start + counts[split]]], y[order[start : start + counts[split]]]
            start += counts[split]
        parts["train"] = x[order[start:]], y[order[start:]]
        parts.update({split: data.parts[split] for split in ("val", "test") if split in data.parts})
        data = replace(data, parts=parts)
        return {
            split: (_as_type(parts[split][0], data, data_type), torch.from_numpy(parts[split][1])) for split in SPLITS
        }


class ImageFolderDataModule(_OwnDataModule):
    """A folder of images (`dataset=images dataset.root=DIR`); see the module docstring."""

    KIND = "images"

    def __init__(self, root: str | Path, **settings: Any):
        super().__init__(root, **settings)


class ArrayFileDataModule(_OwnDataModule):
    """Arrays in a .npz or .npy file (`dataset=arrays dataset.path=FILE`); see the module docstring."""

    KIND = "arrays"

    def __init__(self, path: str | Path, **settings: Any):
        super().__init__(path, **settings)
