"""One's own data as a user would have it, written by the tests: a folder of PNG images (in class
subfolders or not) and random grey images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_images(root: Path, images: np.ndarray, classes: list[str] | None = None) -> Path:
    """Each (H, W) or (H, W, 3) uint8 array as a PNG, in the subfolder of its class if given."""
    for i, image in enumerate(images):
        folder = root / classes[i] if classes is not None else root
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    return root


def grey_images(n: int = 60, shape: tuple[int, ...] = (6, 5), seed: int = 0) -> np.ndarray:
    """(n, *shape) uniformly random grey levels."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)
