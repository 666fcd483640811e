"""The documentation site builds with Sphinx, warnings as errors (`sphinx-build -W`); the build
runs as the test run starts (`build_docs`, early work)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.commands import Started

DOCS = Path(__file__).resolve().parents[1] / "docs"


def build_docs(folder: Path) -> tuple[subprocess.CompletedProcess, Path] | None:
    """`sphinx-build -W` into folder/html: its result and that folder (None without the docs extra)."""
    if any(importlib.util.find_spec(name) is None for name in ("sphinx", "myst_parser", "furo")):
        return None
    command = [sys.executable, "-m", "sphinx", "-W", "-b", "html", "-q", str(DOCS), str(folder / "html")]
    return Started(command, folder / "output").result(), folder / "html"


EARLY = (build_docs,)


@pytest.mark.slow
def test_documentation_builds_without_warnings(early):
    built = early.result(build_docs)
    if built is None:
        pytest.skip("needs sphinx, myst-parser and furo (.[docs])")
    result, html = built
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stdout}\n{result.stderr}"
    assert (html / "index.html").is_file()
    assert (html / "api" / "priors.html").is_file()
