"""MNIST and Fashion-MNIST from their original gzip-compressed IDX files, read with gzip and numpy.

`read_idx` checks what it reads (the file is there, its md5 where one is known, the IDX header,
the number of items and their shape) and says in one line which file is wrong and how.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from vaelab.data.checks import check_md5
from vaelab.errors import DataFormatError

__all__ = ["read_idx"]

# The magic number of an IDX file of unsigned bytes: 0x0000 08 <number of dimensions>.
IDX_UBYTE = 0x08


def read_idx(path: str | Path, shape: tuple[int, ...], md5: str | None = None) -> np.ndarray:
    """The uint8 array of shape `shape` (count first) stored in a gzip-compressed IDX file.

    Arguments:
        path: the `.gz` file.
        shape: what it must hold, e.g. (60000, 28, 28) for images, (60000,) for labels.
        md5: the md5 of the `.gz` file as published, checked before anything is parsed.
    """
    path = Path(path)
    what = f"an IDX file of {' x '.join(map(str, shape))} bytes"
    if not path.is_file():
        raise DataFormatError(f"{path}: file not found (expected {what}, gzip-compressed)")
    compressed = path.read_bytes()
    if md5 is not None:
        check_md5(path, md5, compressed)
    try:
        data = gzip.decompress(compressed)
    except (OSError, EOFError, zlib.error) as error:
        raise DataFormatError(f"{path}: not a complete gzip file ({error})") from None
    header = 4 + 4 * len(shape)
    if len(data) < header:
        raise DataFormatError(f"{path}: {len(data)} bytes is too short for the header of {what}")
    magic = int.from_bytes(data[:4], "big")
    if magic != (IDX_UBYTE << 8) | len(shape):
        raise DataFormatError(
            f"{path}: IDX magic number {magic:#010x} is not {(IDX_UBYTE << 8) | len(shape):#010x} ({what})"
        )
    found = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(len(shape)))
    if found != tuple(shape):
        raise DataFormatError(f"{path}: the header says {' x '.join(map(str, found))}, expected {what}")
    size = int(np.prod(shape))
    if len(data) != header + size:
        raise DataFormatError(f"{path}: {len(data) - header} bytes of data after the header, expected {size} ({what})")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)
