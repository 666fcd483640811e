"""Checks of a dataset's files before any work: the folder, each file, and its published md5."""

from __future__ import annotations

import hashlib
from pathlib import Path

from vaelab.data.binarized_mnist import resolve_data_root
from vaelab.errors import DataFormatError

__all__ = ["check_md5", "check_published_files"]


def check_md5(path: Path, md5: str, content: bytes | None = None) -> None:
    """The file's md5 is the published one (a damaged or different file is one line naming it)."""
    found = hashlib.md5(path.read_bytes() if content is None else content).hexdigest()
    if found != md5:
        raise DataFormatError(
            f"{path}: md5 {found} is not the published {md5} (a damaged or different file; copy it again)"
        )


def check_published_files(root: str | Path, files: dict[str, str], what: str) -> Path:
    """The folder `root` holds each of `files` (name → published md5) with its md5: the folder.
    `what` names the dataset in the messages."""
    folder = resolve_data_root(root)
    names = ", ".join(files)
    if not folder.is_dir():
        raise DataFormatError(
            f"dataset.root={str(root)!r} is not allowed: no such folder (looked in {folder.resolve()}); "
            f"it should hold the {what} files {names}"
        )
    for name, md5 in files.items():
        if not (folder / name).is_file():
            raise DataFormatError(f"{folder / name}: file not found (one of the {what} files {names})")
        check_md5(folder / name, md5)
    return folder
