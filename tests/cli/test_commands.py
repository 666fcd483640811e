"""The installed commands: each answers `--help` without importing torch, and each does its job
end to end on runs saved in tests/data/legacy_runs (no training needed to have something to
evaluate, compare or refit)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.commands import Started

BIN = Path(sys.executable).parent
LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_runs"
WRITTEN_IN = "/tmp/oldruns"  # where the legacy runs were written: their configs name this folder
COMMANDS = {
    "vaelab-train": "vaelab.cli.train",
    "vaelab-evaluate": "vaelab.cli.evaluate",
    "vaelab-compare": "vaelab.cli.compare",
    "vaelab-fit-prior": "vaelab.cli.fit_prior",
    "vaelab-tune": "vaelab.cli.tune",
}
QUICK_EVAL = ("eval.num_samples=10", "eval.num_latent_samples=100")


def command(name: str) -> str:
    path = BIN / name
    assert path.is_file(), f"{name} is not installed next to {sys.executable} (pip install -e .)"
    return str(path)


def legacy_run(folder: Path, name: str = "vamp") -> Path:
    target = folder / name
    shutil.copytree(LEGACY / name, target)
    for path in (target / "config.yaml", *(target / ".hydra").glob("*.yaml")):
        path.write_text(path.read_text().replace(f"{WRITTEN_IN}/{name}", str(target)))
    return target


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_answers_help(name):
    result = subprocess.run([command(name), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == ""
    assert name in result.stdout and ("usage:" in result.stdout or "== Configuration groups ==" in result.stdout)


@pytest.mark.parametrize("module", sorted(COMMANDS.values()))
def test_no_command_imports_torch_before_it_has_work(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout == "False\n"


def test_train_answers_a_bad_value_before_it_imports_lightning(tmp_path):
    """The values are checked first: a mistake is one line in the time torch takes to import."""
    code = (
        "import sys\n"
        "from vaelab.cli.train import main\n"
        "try:\n"
        "    main(['prior=mog', 'prior.num_components=0'])\n"
        "except SystemExit as stop:\n"
        "    print(stop.code, 'pytorch_lightning' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.stdout == "error: prior.num_components=0 is not allowed: must be a positive integer False\n"
    assert not [path for path in tmp_path.rglob("*") if path.is_file()], "no run directory is left"


def test_train_prints_its_config_without_training(tmp_path):
    result = subprocess.run(
        [command("vaelab-train"), "prior=vamp", "--cfg", "job"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert "_target_: vaelab.priors.VampPrior" in result.stdout and not (tmp_path / "outputs").exists()


def test_a_bad_path_is_one_line_and_exit_status_two(tmp_path):
    for name in ("vaelab-evaluate", "vaelab-fit-prior"):
        result = subprocess.run([command(name), str(tmp_path / "nowhere"), "prior=mog"], capture_output=True, text=True)
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and "nowhere" in result.stderr, name
    result = subprocess.run([command("vaelab-compare"), str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "nowhere" in result.stderr


def use_commands(folder: Path) -> dict:
    """vaelab-train, vaelab-evaluate and vaelab-fit-prior, each used once, side by side (one torch
    thread each), as the test run starts (early work): their results and folders."""
    train_dir, evaluate_dir, refit_dir = folder / "run", legacy_run(folder / "evaluate"), legacy_run(folder / "refit")
    settings = ("trainer=fast", "encoder.hidden=8", "decoder.hidden=8", "figures.enabled=false", "eval.exact=false")
    commands = {
        "vaelab-train": [*settings, "eval.quality.enabled=false", *QUICK_EVAL, f"hydra.run.dir={train_dir}"],
        "vaelab-evaluate": [str(evaluate_dir), *QUICK_EVAL, "--json", str(folder / "results.json")],
        "vaelab-fit-prior": [
            str(refit_dir),
            "prior=mog",
            "prior.num_components=3",
            "trainer.max_epochs=2",
            *QUICK_EVAL,
        ],
    }
    started = {
        name: Started([command(name), *args], folder / "output" / name, cwd=folder) for name, args in commands.items()
    }
    results = {name: process.result(timeout=300) for name, process in started.items()}
    return {
        "vaelab-train": train_dir,
        "vaelab-evaluate": evaluate_dir,
        "vaelab-fit-prior": refit_dir,
        "results": results,
        "json": folder / "results.json",
    }


EARLY = (use_commands,)


@pytest.fixture(scope="module")
def finished(early) -> dict:
    return early.result(use_commands)


@pytest.mark.slow
def test_train_runs_one_short_job(finished):
    result, run_dir = finished["results"]["vaelab-train"], finished["vaelab-train"]
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 3 and (run_dir / "train.log").is_file()


@pytest.mark.slow
def test_evaluate_writes_the_metrics_of_a_run(finished):
    result, run_dir = finished["results"]["vaelab-evaluate"], finished["vaelab-evaluate"]
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"updated {run_dir / 'metrics.json'}" in result.stdout
    assert (
        json.loads(finished["json"].read_text())["test/nll"]
        == json.loads((run_dir / "metrics.json").read_text())["test/nll"]
    )


@pytest.mark.slow
def test_compare_writes_the_report_of_a_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    for name in ("vamp", "maf"):
        legacy_run(sweep, name)
    result = subprocess.run([command("vaelab-compare"), str(sweep)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = (sweep / "comparison.md").read_text()
    assert "| vamp (prior.num_components=4) |" in report and "| maf (prior.hidden=8) |" in report
    assert (sweep / "comparison.csv").is_file()


@pytest.mark.slow
def test_fit_prior_refits_a_run(finished):
    result, run_dir = finished["results"]["vaelab-fit-prior"], finished["vaelab-fit-prior"]
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((run_dir / "posthoc" / "mog" / "posthoc.json").read_text())
    assert record["prior"] == "mog" and record["source_prior"] == "vamp" and "test/nll" in record["after"]
