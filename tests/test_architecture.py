"""The package's shape: imports point one way (no cycles, layers in order), small modules, light
commands, and every subpackage says what it is for. Imports are read with `ast`, function-level
ones included, so a cycle cannot hide inside a function."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "vaelab"
# Lower layers never import higher ones: core ← evaluation ← training ← posthoc ← cli.
LAYERS = {"evaluation": 1, "training": 2, "posthoc": 3, "cli": 4}
TORCH_FREE = ("vaelab.reports", "vaelab.rundir", "vaelab.errors", "vaelab.files", "vaelab.overrides")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(name: str, source: str | None = None) -> set[str]:
    """The vaelab modules that module `name` (or `source` in its place) imports anywhere in its
    file, functions included (a package counts as its `__init__`; `from vaelab.x import y` counts
    as vaelab.x.y when y is a module)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


GRAPH = {name: imports(name) for name in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return out


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles_between_vaelab_modules():
    assert cycles(GRAPH) == []


def test_function_level_and_relative_imports_count():
    source = "def f():\n    from vaelab.training.fit import run\n    from . import metrics\n"
    assert imports("vaelab.evaluation.runner", source) == {"vaelab.training.fit", "vaelab.evaluation.metrics"}


def layer(name: str) -> int:
    parts = name.split(".")
    return LAYERS.get(parts[1], 0) if len(parts) > 1 else 0


@pytest.mark.parametrize("name", sorted(set(GRAPH) - {"vaelab"}))  # the package's face re-exports run and build
def test_imports_point_down_the_layers(name):
    upward = sorted(other for other in GRAPH[name] if layer(other) > layer(name))
    assert upward == [], f"{name} imports a higher layer"


def test_reports_and_run_directory_need_no_torch():
    for name in [n for n in MODULES if n.startswith(TORCH_FREE)]:
        assert not (GRAPH[name] - {n for n in MODULES if n.startswith(TORCH_FREE)}), name
        source = MODULES[name].read_text()
        assert "import torch" not in source and "pytorch_lightning" not in source, name
    code = "import sys, vaelab.reports, vaelab.rundir, vaelab.cli.compare; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_at_most_a_dozen_modules_at_the_top_and_none_over_400_lines():
    top = [path for path in PACKAGE.glob("*.py")]
    assert len(top) <= 12, sorted(p.name for p in top)
    long = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {name: n for name, n in long.items() if n > 400} == {}


def test_every_subpackage_says_what_it_is_for():
    for init in PACKAGE.rglob("__init__.py"):
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring and len(docstring.split()) >= 5, init


def test_public_modules_declare_what_they_export():
    for name, path in MODULES.items():
        if path.name != "__init__.py" and not path.name.startswith("_"):
            tree = ast.parse(path.read_text())
            names = {
                t.id
                for node in tree.body
                if isinstance(node, ast.Assign)
                for t in node.targets
                if isinstance(t, ast.Name)
            }
            assert "__all__" in names, name
