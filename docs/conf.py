"""Sphinx configuration of the vaelab documentation.

Build (warnings are errors):

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Pages are Markdown (MyST); the API reference is autodoc over the installed package.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The checkout's package first, so that the pages describe this tree even without an editable install.
sys.path.insert(0, str(ROOT / "src"))

project = "vaelab"
author = "the vaelab authors"
copyright = "the vaelab authors"
try:
    from importlib.metadata import version as _version

    release = _version("vaelab")
except Exception:  # noqa: BLE001 - not installed: the docs still build
    release = ""
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    # Data behind the results pages (tables, CSV, JSON), included into them, not pages of their own.
    "results/**",
    "tables/**",
]

# -- Markdown (MyST) ---------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3  # `[text](page.md#a-heading)` links to headings up to ###

# -- API reference -----------------------------------------------------------------------------
# The docstrings are plain text with `backticks` for code: render them as inline code, not as
# reStructuredText's "interpreted text" (which would warn for every one of them).
default_role = "code"
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"
# The docstrings use neither Google nor NumPy sections (both parsers off); napoleon is there for
# docstrings that will: switch the matching style on then.
napoleon_google_docstring = False
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# A method that overrides Lightning's or torch's without a docstring of its own stays bare: their
# docstrings are written for their own documentation (its roles, labels and directives).
autodoc_inherit_docstrings = False

nitpicky = False


# -- HTML --------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"vaelab {release}".strip()
html_static_path: list[str] = []
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": True,
    "top_of_page_buttons": [],
}
pygments_style = "sphinx"
pygments_dark_style = "monokai"


# -- vaelab's docstrings as reStructuredText -----------------------------------------------------
# vaelab's docstrings are plain text, meant to be read in the source and in `help()`: `backticks`
# for code, `- ` bullet lists, and indented blocks for anything laid out by hand (commands,
# formulas, small tables). `plain_docstring` makes reStructuredText of them that renders as they
# read: an indented block becomes a literal block (line breaks and alignment kept) instead of a
# block quote that joins its lines, unless it is a `- ` list; a list gets the blank lines reST
# wants around it; and the characters that are markup in reST but text in a plain docstring (a
# lone `*` as in `(*batch, dim)`, `|x|`, a trailing `_`, a backtick span followed by a letter)
# are escaped. `*word*` stays emphasis. Code inside backticks and literal blocks is left as it is.
_CODE = re.compile(r"(`[^`\n]+`)")
_EMPHASIS = re.compile(r"((?<![\w*\\])\*(?=[A-Za-z])[^*\n]*?[A-Za-z.]\*(?![\w*]))")


def _escape_text(text: str) -> str:
    """reST's markup characters in plain text, escaped: backslash, `*`, `|` and a trailing `_`."""
    text = text.replace("\\", "\\\\").replace("*", "\\*").replace("|", "\\|")
    return re.sub(r"(?<=\w)_(?=\W|$)", r"\\_", text)


def _escape_prose(text: str) -> str:
    """`text` with its markup characters escaped outside backtick spans and `*emphasis*`."""
    parts = _CODE.split(text)
    for i, part in enumerate(parts):
        if i % 2 == 0:
            pieces = _EMPHASIS.split(part)
            parts[i] = "".join(piece if j % 2 else _escape_text(piece) for j, piece in enumerate(pieces))
        elif i + 1 < len(parts) and re.match(r"\w", parts[i + 1]):  # a code span followed by a letter
            parts[i] = part + "\\ "
    return "".join(parts)


def _is_bullet_list(block: list[str]) -> bool:
    """`- ` items, each continued by lines indented two spaces, nothing else."""
    return block[0].startswith("- ") and all(line.startswith(("- ", "  ")) or not line for line in block)


def plain_docstring(lines: list[str]) -> list[str]:
    """reST lines for the plain-text docstring `lines` (already dedented by autodoc)."""
    out: list[str] = []

    def blank() -> None:
        if out and out[-1] != "":
            out.append("")

    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            blank()
            i += 1
        elif line[0] == " ":  # an indented block, up to the next unindented line
            end = i
            while end < len(lines) and (not lines[end].strip() or lines[end][0] == " "):
                end += 1
            while not lines[end - 1].strip():
                end -= 1
            block = textwrap.dedent("\n".join(lines[i:end])).splitlines()
            blank()
            if _is_bullet_list(block):  # an indented list reads as a list
                out += [_escape_prose(item) for item in block]
                out.append("")
            else:  # anything else laid out by hand: a literal block
                out += ["::", "", *lines[i:end], ""]
            i = end
        elif line.startswith("- "):  # a bullet list: items and their continuation lines (indented 2)
            blank()
            while i < len(lines) and (lines[i].startswith("- ") or re.match(r"  \S", lines[i])):
                out.append(_escape_prose(lines[i]))
                i += 1
            out.append("")
        else:  # a paragraph line
            out.append(_escape_prose(line))
            i += 1
    return out


def _process_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    if name == "vaelab" or name.startswith("vaelab."):
        lines[:] = plain_docstring(lines)


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _process_docstring)
