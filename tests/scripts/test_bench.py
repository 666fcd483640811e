"""scripts/bench.py runs every mode end to end on a tiny budget and prints every figure it promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.commands import Started

ROOT = Path(__file__).resolve().parents[2]
TINY_PAPER = ["--steps", "2", "--warmup", "1", "--repeats", "1", "--threads", "1"]
# The digits runs of everyday and figures: 2 training and 2 validation batches, a cheap evaluation.
TINY_DIGITS = [
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=2",
    "figures.every_n_epochs=1",
    "eval.num_samples=10",
    "eval.exact=false",
    "eval.num_latent_samples=100",
    "eval.quality.enabled=false",
]
SMALL_NET = ["hidden=32", "num_layers=1", "activation=leaky_relu"]  # for torch.compile: fewer kernels to build


def run_benches(folder: Path) -> dict[str, subprocess.CompletedProcess]:
    """`python scripts/bench.py` in every mode on a tiny budget, side by side (one thread each):
    name → its result. Early work, started as the test run starts."""
    no_data = ["--root", str(folder / "no_data")]  # a data root without the MNIST files: random bits
    small = [f"{net}.{setting}" for net in ("encoder", "decoder") for setting in SMALL_NET]
    everyday = ["--mode", "everyday", "--epochs", "2", "--repeats", "1", "--threads", "1", "--full"]
    runs = {
        "paper": [*TINY_PAPER, *no_data, "--priors", "standard", "vamp", "encoder.hidden=32", "decoder.hidden=32"],
        "compile": [*TINY_PAPER, "--priors", "standard", "--compile", *no_data, *small],
        "everyday": [*everyday, "trainer.max_epochs=2", *TINY_DIGITS],  # the whole run: 2 epochs too
        "figures": ["--mode", "figures", "--epochs", "1", "--repeats", "1", "--threads", "1", *TINY_DIGITS],
        "evaluation": [
            *["--mode", "evaluation", "--inputs", "4", "--samples", "6", "--repeats", "1", "--threads", "1", *no_data],
            *[
                "--priors",
                "standard",
                "model=hvae",
                "model.hidden=32",
                "encoder.hidden=32",
                "decoder.hidden=32",
            ],
        ],
    }
    started = {name: Started([sys.executable, "scripts/bench.py", *args], folder / name) for name, args in runs.items()}
    return {name: process.result() for name, process in started.items()}


EARLY = (run_benches,)


def bench(early, name: str) -> str:
    """The standard output of that run of scripts/bench.py, which must have succeeded."""
    result = early.result(run_benches)[name]
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
def test_paper_prints_epoch_times_ratios_the_vamp_floor_and_lightning_overhead(early):
    out = bench(early, "paper")
    assert "random bits of the same shape" in out and "overrides: encoder.hidden=32 decoder.hidden=32" in out
    rows = dict(re.findall(r"^  (standard|vamp|vamp, naive log_prob) +[\d.]+ +[\d.]+ +([\d.]+)x$", out, re.M))
    assert set(rows) == {"standard", "vamp", "vamp, naive log_prob"}, out
    assert float(rows["standard"]) == 1.0 and all(float(ratio) > 0 for ratio in rows.values())
    assert re.search(r"floor for vamp: .* = [\d.]+ s/step, [\d.]+x standard; vamp / floor = [\d.]+", out), out
    assert len(re.findall(r"plain [\d.]+ s/step, Lightning [\d.]+ s/step: [\d.]+x", out)) == 2, out
    assert out.count("load average") == 2


@pytest.mark.slow
def test_paper_compile_prints_eager_and_compiled_step_times(early):
    out = bench(early, "compile")
    line = r"^  standard +eager [\d.]+, compiled [\d.]+ s/step: [\d.]+x \(compiling: [\d.]+ s"
    assert re.search(line, out, re.M), out


@pytest.mark.slow
def test_everyday_prints_training_ratios_the_breakdown_start_up_and_the_whole_run(early):
    out = bench(early, "everyday")
    names = re.findall(r"^  (.+?) +[\d.]+ s +[\d.]+x +[\d.]+ s +[\d.]+x +\(", out, re.M)
    assert names == [
        "plain PyTorch loop",
        "vaelab default (no terminal)",
        "bare Lightning fit (no callbacks)",
        "vaelab, progress bar on (as on a terminal)",
        "vaelab, no progress bar",
        "vaelab, no figures",
        "vaelab, no checkpoints saved",
    ], out
    assert re.search(r"^  plain PyTorch loop +[\d.]+ s +1\.00x +[\d.]+ s +1\.00x", out, re.M), out
    assert re.search(r"^  python train.py --cfg job +[\d.]+ s +[\d.]+ s", out, re.M), out
    assert re.search(r'^  python -c "import vaelab" +[\d.]+ s +[\d.]+ s', out, re.M), out
    assert re.search(r"^  python train.py +[\d.]+ s +[\d.]+ s", out, re.M), out
    assert re.search(r"^  its output: \d+ KB, \d+ carriage returns$", out, re.M), out
    assert out.count("load average") == 2


@pytest.mark.slow
def test_figures_prints_on_off_ratios_and_the_drawing_time(early):
    out = bench(early, "figures")
    assert "figures every 1 epochs" in out, out
    assert re.search(r"^  figures off +[\d.]+ s +1\.00x +[\d.]+ s +1\.00x +\(", out, re.M), out
    assert re.search(r"^  figures on +[\d.]+ s +[\d.]+x +[\d.]+ s +[\d.]+x +\(", out, re.M), out
    assert re.search(r"the figure callback / the rest of the run \(wall clock\): [+-][\d.]+%$", out, re.M), out
    assert re.search(r"the drawing in its background thread: [\d.]+ s \([\d.]+% of the fit\)$", out, re.M), out
    assert out.count("load average") == 2


@pytest.mark.slow
def test_evaluation_prints_the_importance_sampling_against_its_floor(early):
    out = bench(early, "evaluation")
    assert "model=hvae" in out and "q(z1|x, z2) and p(z1|z2) networks as bare calls" in out, out
    rows = re.findall(r"^  (standard|vamp) +([\d.]+) +([\d.]+) +([\d.]+)x +([\d.]+) min$", out, re.M)
    assert [row[0] for row in rows] == ["standard"], out
    assert all(float(number) > 0 for row in rows for number in row[1:]), out
    assert out.count("load average") == 2


def test_an_option_of_another_mode_is_an_error():  # argparse alone: fast
    result = subprocess.run(
        [sys.executable, "scripts/bench.py", "--mode", "figures", "--steps", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "--steps is an option of --mode paper, not of --mode figures" in result.stderr
