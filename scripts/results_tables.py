"""The documentation's results tables, generated from their data files.

    python scripts/results_tables.py            # write docs/results/tables/*.md and README.md's headline
    python scripts/results_tables.py --check    # write nothing; exit 1 naming every file that differs

Every measured number the documentation quotes lives in `docs/results/<study>.yaml`, one study a
file: `study`, `description`, `provenance` (shared by the rows: `command`, `commit`, `commit_of`,
`date`, `hardware`, `S`), `columns` (key -> `header`, `decimals`, `better`: min | max, `format`:
mean_std | range | interval | list, `sign`, and `S` or `likelihood: true` for a −log p(x) column), optional
`notes` and `references`, and `rows`. A row may override any provenance key, and may add `note`
(printed under the table), `sources` (further provenance records: `part`, `command`, `commit`,
`date`) and `decimals` (per column). `commit_of` says which commit `commit` is: `run` (the code the
measurement ran), `message` (the commit whose message reports it) or `readme` (the commit that added
the number to the documentation). A column may name a provenance key (`commit`, `S`, ...).

Each study becomes `docs/results/tables/<study>.md`: the table, the best value of each column with a
`better` in bold, the notes and a provenance line. The paper benchmark's rows with `headline: true`
also fill README.md between `<!-- results:headline -->` and `<!-- /results:headline -->` when it has
those markers. Plain Python and PyYAML; no torch.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
README = ROOT / "README.md"
PROVENANCE = ("command", "commit", "commit_of", "date", "hardware", "S")
COLUMN_KEYS = ("header", "decimals", "better", "format", "sign", "S", "likelihood")
ROW_EXTRAS = ("note", "sources", "decimals", "headline", "prior", "label")
HEADLINE_STUDY = "paper_benchmark"
HEADLINE = re.compile(r"(<!-- results:headline -->\n)(.*?)(<!-- /results:headline -->)", re.DOTALL)
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser where PyYAML has it: same data, faster
SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def load(path: Path) -> dict:
    """One study's data, its rows' keys checked against its columns and the provenance keys."""
    try:
        study = yaml.load(path.read_text(encoding="utf-8"), Loader=LOADER)
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: {error}") from None
    if missing := {"study", "description", "columns", "rows"} - set(study):
        raise ValueError(f"{path}: no {sorted(missing)}")
    for key, column in study["columns"].items():
        unknown = set(column) - set(COLUMN_KEYS)
        if unknown or "header" not in column:
            raise ValueError(f"{path}: column {key} needs a header and takes only {COLUMN_KEYS}, not {sorted(unknown)}")
    for number, row in enumerate(study["rows"], 1):
        unknown = set(row) - set(study["columns"]) - set(PROVENANCE) - set(ROW_EXTRAS)
        if unknown:
            raise ValueError(f"{path}: row {number} has unknown keys {sorted(unknown)}")
    return study


def merged(study: dict, row: dict) -> dict:
    """A row with the study's shared provenance under it."""
    return {**study.get("provenance", {}), **row}


def decimals(row: dict, key: str, column: dict) -> int | None:
    return row.get("decimals", {}).get(key, column.get("decimals"))


def number(value, places: int | None, sign: bool = False) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return (str(value) if places is None else f"{value:{'+' if sign else ''}.{places}f}").replace("-", "−")


def cell(row: dict, key: str, column: dict) -> str:
    value, places = row.get(key), decimals(row, key, column)
    if value is None:
        return "–"
    if key == "commit":
        return f"`{value[:7]}`"
    if isinstance(value, str):
        return value.replace("|", "\\|")
    if not isinstance(value, list):
        return number(value, places, column.get("sign", False))
    form = column.get("format", "list")
    if form == "mean_std":
        return f"{number(value[0], places, column.get('sign', False))} ± {number(value[1], places)}"
    if form == "range":
        return "–".join(number(v, places) for v in value)
    if form == "interval":  # a confidence interval, [low, high]
        return "[" + ", ".join(number(v, places, column.get("sign", False)) for v in value) + "]"
    return ", ".join(number(v, places) for v in value)


def comparable(row: dict, key: str, column: dict) -> float | None:
    """The value that competes for bold: a number, or the mean of a mean ± std pair, as printed."""
    value = row.get(key)
    if isinstance(value, list) and column.get("format") == "mean_std":
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    places = decimals(row, key, column)
    return value if places is None or math.isinf(value) else round(value, places)


def best(rows: list[dict], key: str, column: dict) -> float | None:
    if column.get("better") not in ("min", "max"):
        return None
    values = [v for v in (comparable(row, key, column) for row in rows) if v is not None]
    return None if len(values) < 2 else (min if column["better"] == "min" else max)(values)


def markdown_table(headers: list[str], lines: list[list[str]], right: list[bool]) -> str:
    rule = ["---:" if r else "---" for r in right]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [headers, rule, *lines]) + "\n"


def commits(rows: list[dict]) -> list[str]:
    """`abc1234` (date) for every commit of the rows and their sources, in order of appearance."""
    seen: dict[str, str] = {}
    for row in rows:
        for record in [row, *row.get("sources", [])]:
            if record.get("commit"):
                seen.setdefault(str(record["commit"])[:7], str(record.get("date", "")))
    return [f"`{commit}` ({date})" for commit, date in seen.items()]


def distinct(rows: list[dict], key: str) -> list[str]:
    values: list[str] = []
    for row in rows:
        value = row.get(key)
        for text in value if isinstance(value, list) else [value]:
            if text and str(text) not in values:
                values.append(str(text))
    return values


def provenance_line(rows: list[dict], source: str) -> str:
    commands = distinct(rows, "command")
    command = "; ".join(f"`{c}`" for c in commands) if len(commands) <= 2 else "one per row in the data file"
    return (
        f"Data: `docs/results/{source}`. Commits (dates): {', '.join(commits(rows))}. "
        f"Hardware: {'; '.join(distinct(rows, 'hardware'))}. Command: {command}.\n"
    )


def table(study: dict, source: str) -> str:
    """The Markdown file of one study: comment line, table, notes, provenance."""
    columns, rows = study["columns"], [merged(study, row) for row in study["rows"]]
    bests = {key: best(rows, key, column) for key, column in columns.items()}
    arrows = {"min": " ↓", "max": " ↑"}
    headers = [column["header"] + arrows.get(column.get("better"), "") for column in columns.values()]
    right = [any(isinstance(row.get(key), (int, float, list)) for row in rows) for key in columns]
    lines, notes = [], []
    for row in rows:
        cells = []
        for key, column in columns.items():
            text = cell(row, key, column)
            if bests[key] is not None and comparable(row, key, column) == bests[key]:
                text = f"**{text}**"
            cells.append(text)
        if row.get("note"):
            notes += [] if row["note"] in notes else [row["note"]]
            cells[0] += " " + str(notes.index(row["note"]) + 1).translate(SUPERSCRIPT)
        lines.append(cells)
    parts = [
        f"<!-- generated by scripts/results_tables.py from docs/results/{source}; do not edit -->\n",
        markdown_table(headers, lines, right),
    ]
    if notes:
        parts += [f"{str(n).translate(SUPERSCRIPT)} {note}\n" for n, note in enumerate(notes, 1)]
    for reference in study.get("references", []):
        parts.append(f"Published: {reference['label']}, {number(reference['nll'], 2)} nats at S = {reference['S']}.\n")
    parts += [note.strip() + "\n" for note in study.get("notes", [])]
    parts.append(provenance_line(rows, source))
    return "\n".join(parts)


def headline(study: dict, source: str) -> str:
    """One row per prior of the paper benchmark: −log p(x) at the largest S measured (5000, 1000 or 100)."""
    lines, values = [], []
    for row in (merged(study, row) for row in study["rows"] if row.get("headline")):
        key = next(k for k in ("nll_s5000", "nll_s1000", "nll_s100") if row.get(k) is not None)
        values.append(row[key])
        lines.append([f"`{row['prior']}`", number(row[key], 2), str(study["columns"][key]["S"])])
    for cells, value in zip(lines, values, strict=True):
        if value == min(values):
            cells[1] = f"**{cells[1]}**"
    return (
        "\n"
        + markdown_table(["prior", "−log p(x) (nats) ↓", "S"], lines, [False, True, True])
        + f"\nGenerated by `scripts/results_tables.py` from `docs/results/{source}`.\n\n"
    )


def generate(results: Path = RESULTS, readme: Path | None = README) -> dict[Path, str]:
    """Every file the data generate, with its content: one table per study, and README.md when it
    has the headline markers."""
    files: dict[Path, str] = {}
    for path in sorted(results.glob("*.yaml")):
        study = load(path)
        files[results / "tables" / f"{study['study']}.md"] = table(study, path.name)
        if study["study"] == HEADLINE_STUDY and readme is not None and readme.exists():
            text = readme.read_text(encoding="utf-8")
            if HEADLINE.search(text):
                block = headline(study, path.name)
                files[readme] = HEADLINE.sub(lambda m, block=block: m.group(1) + block + m.group(3), text)
    return files


def differences(files: dict[Path, str], results: Path) -> list[Path]:
    """Generated files missing or different on disk, then tables that no data file generates."""
    differ = [p for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    return differ + sorted(p for p in (results / "tables").glob("*.md") if p not in files)


def check(results: Path = RESULTS, readme: Path | None = README) -> list[Path]:
    """The files whose content differs from what the data generate; writes nothing."""
    return differences(generate(results, readme), results)


def write(results: Path = RESULTS, readme: Path | None = README) -> list[Path]:
    """Write what differs, remove stale tables; the paths changed."""
    files = generate(results, readme)
    changed = differences(files, results)
    for path in changed:
        if path in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(files[path], encoding="utf-8")
        else:
            path.unlink()
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file differs")
    args = parser.parse_args()
    if args.check:
        differ = check()
        for path in differ:
            print(f"differs from its data: {path.relative_to(ROOT)}")
        if differ:
            print("run: python scripts/results_tables.py")
        return 1 if differ else 0
    for path in write():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
