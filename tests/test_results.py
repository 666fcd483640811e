"""The documentation's results tables are what their data files generate (scripts/results_tables.py),
and every measured number in those files says what produced it."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
DATA = sorted(RESULTS.glob("*.yaml"))


def load_script():
    spec = importlib.util.spec_from_file_location("results_tables", ROOT / "scripts" / "results_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


results_tables = load_script()


def test_results_tables_equal_what_their_data_generate():
    assert results_tables.check() == [], "run: python scripts/results_tables.py"


def test_a_changed_number_makes_its_table_differ(tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(RESULTS, copy)
    data = copy / "paper_benchmark.yaml"
    text = data.read_text(encoding="utf-8")
    assert "nll_s5000: 84.15" in text
    data.write_text(text.replace("nll_s5000: 84.15", "nll_s5000: 84.05"), encoding="utf-8")
    assert results_tables.check(copy, readme=None) == [copy / "tables" / "paper_benchmark.md"]
    assert results_tables.write(copy, readme=None) == [copy / "tables" / "paper_benchmark.md"]
    assert "**84.05**" in (copy / "tables" / "paper_benchmark.md").read_text(encoding="utf-8")


def test_a_table_without_data_is_stale(tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(RESULTS, copy)
    (copy / "speed_compile.yaml").unlink()
    assert results_tables.check(copy, readme=None) == [copy / "tables" / "speed_compile.md"]


def test_a_mistyped_key_is_refused(tmp_path):
    copy = tmp_path / "results"
    copy.mkdir()
    text = (RESULTS / "speed_compile.yaml").read_text(encoding="utf-8")
    (copy / "speed_compile.yaml").write_text(text.replace("ratio: 1.32", "rattio: 1.32"), encoding="utf-8")
    with pytest.raises(ValueError, match="rattio"):
        results_tables.generate(copy, readme=None)


def test_the_readme_headline_has_one_row_per_prior_at_the_largest_s(tmp_path):
    readme = tmp_path / "README.md"
    markers = "<!-- results:headline -->\nold\n<!-- /results:headline -->"
    readme.write_text(f"# vaelab\n\n{markers}\n\nmore\n", encoding="utf-8")
    text = results_tables.generate(readme=readme)[readme]
    assert "old" not in text and text.endswith("<!-- /results:headline -->\n\nmore\n")
    rows = re.findall(r"^\| `(\w+)` \| (\S+) \| (\d+) \|$", text, re.MULTILINE)
    assert sorted(prior for prior, _, _ in rows) == sorted(
        ["standard", "mog", "vamp", "gtm", "gtm_vamp", "flow", "maf", "nsf", "lars", "vamp_data", "latent_vae"]
    )
    assert ("maf", "**84.15**", "5000") in rows and ("latent_vae", "85.79", "100") in rows  # S = 100 its largest
    readme.write_text(text, encoding="utf-8")
    assert results_tables.generate(readme=readme)[readme] == text  # generating again changes nothing


@pytest.mark.parametrize("path", DATA, ids=[p.stem for p in DATA])
def test_every_row_says_what_produced_it(path):
    study = yaml.load(path.read_text(encoding="utf-8"), Loader=results_tables.LOADER)
    assert study["study"] == path.stem and study["description"].strip()
    likelihood = {k: c for k, c in study["columns"].items() if "S" in c or c.get("likelihood")}
    for number, row in enumerate(study["rows"], 1):
        record = {**study.get("provenance", {}), **row}
        where = f"{path.name}, row {number}"
        for source in [record, *record.get("sources", [])]:
            assert source.get("command"), f"{where}: no command"
            assert re.fullmatch(r"[0-9a-f]{40}", str(source.get("commit"))), f"{where}: commit is not a full hash"
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(source.get("date"))), f"{where}: no date"
        assert record.get("hardware"), f"{where}: no hardware"
        assert record.get("commit_of") in ("run", "message", "readme"), f"{where}: commit_of"
        for key, column in likelihood.items():
            if row.get(key) is not None:
                measured = record.get("S")
                measured = measured if isinstance(measured, list) else [measured]
                assert measured != [None], f"{where}: {key} without the S it was estimated with"
                assert column.get("S", measured[0]) in measured, f"{where}: {key} is at S = {column['S']}"


def test_an_interval_column_prints_its_bounds_with_signs(tmp_path):
    copy = tmp_path / "results"
    copy.mkdir()
    study = {
        "study": "paired",
        "description": "d",
        "provenance": {"command": "c", "commit": "0" * 40, "commit_of": "run", "date": "2026-12-03"},
        "columns": {
            "label": {"header": "prior"},
            "diff": {"header": "difference", "decimals": 2, "sign": True},
            "ci": {"header": "95% interval", "decimals": 2, "sign": True, "format": "interval"},
        },
        "rows": [{"label": "mog", "diff": -0.28, "ci": [-0.75, 0.19]}],
    }
    (copy / "paired.yaml").write_text(yaml.safe_dump(study, allow_unicode=True, sort_keys=False), encoding="utf-8")
    table = results_tables.generate(copy, readme=None)[copy / "tables" / "paired.md"]
    assert "| mog | −0.28 | [−0.75, +0.19] |" in table
