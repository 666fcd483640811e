"""Files written whole or not at all: a temporary file in the same directory, renamed over the old
one when complete (`os.replace` is atomic on POSIX), so a kill at any moment leaves the previous
version readable. A write that fails (a full disk) raises `WriteError` naming the file and leaves
the previous version in place. Light on purpose (no torch): the reports use it too."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from vaelab.errors import WriteError

__all__ = ["ATTEMPTS", "atomic_write", "atomic_write_json", "atomic_write_text", "set_aside"]
ATTEMPTS = "attempts"  # `set_aside`'s folder of earlier attempts


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)`, then rename tmp over `path`: readers see the old file or the new one, never half.
    An OSError on the way (no space left, no permission) becomes a `WriteError` that names `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except WriteError:
        raise
    except OSError as error:
        raise WriteError.of(path, error) from error
    finally:
        with contextlib.suppress(OSError):  # where the write failed, there may be no folder to clean
            tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_json(path: str | Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def set_aside(directory: str | Path, keep: Iterable[str] = ()) -> Path:
    """Move what an earlier, unfinished or failed attempt wrote in `directory` (all but `keep` and
    `attempts/`) into `attempts/<n>/`: the work starts afresh there and nothing is lost."""
    directory = Path(directory)
    keep = {*keep, ATTEMPTS}
    target = directory / ATTEMPTS / str(len(list((directory / ATTEMPTS).glob("*"))) + 1)
    target.mkdir(parents=True)
    for path in directory.iterdir():
        if path.name not in keep:
            path.rename(target / path.name)
    return target
