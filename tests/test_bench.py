"""scripts/bench.py runs end to end on a tiny budget and prints every figure it promises."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import ROOT


def test_bench_prints_epoch_times_ratios_the_vamp_floor_and_lightning_overhead(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "scripts/bench.py",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--repeats",
            "1",
            "--threads",
            "1",
            "--priors",
            "standard",
            "mog",
            "vamp",
            "--root",
            str(tmp_path / "no_data"),
            "encoder.hidden=32",
            "decoder.hidden=32",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "random bits of the same shape" in out and "overrides: encoder.hidden=32 decoder.hidden=32" in out
    rows = dict(re.findall(r"^  (standard|mog|vamp|vamp, naive log_prob) +[\d.]+ +[\d.]+ +([\d.]+)x$", out, re.M))
    assert set(rows) == {"standard", "mog", "vamp", "vamp, naive log_prob"}, out
    assert float(rows["standard"]) == 1.0 and all(float(ratio) > 0 for ratio in rows.values())
    assert re.search(r"floor for vamp: .* = [\d.]+ s/step, [\d.]+x standard; vamp / floor = [\d.]+", out), out
    assert len(re.findall(r"plain [\d.]+ s/step, Lightning [\d.]+ s/step: [\d.]+x", out)) == 2, out


def test_bench_everyday_prints_training_ratios_the_breakdown_and_start_up(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "scripts/bench.py",
            "--mode",
            "everyday",
            "--epochs",
            "2",
            "--repeats",
            "1",
            "--threads",
            "1",
            "+trainer.limit_train_batches=2",
            "figures.every_n_epochs=1",
            "eval.num_samples=10",
            "eval.exact=false",
            "eval.num_latent_samples=100",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
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
    assert "load average" in out


@pytest.mark.slow
def test_bench_compile_prints_eager_and_compiled_step_times(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "scripts/bench.py",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--repeats",
            "1",
            "--threads",
            "1",
            "--priors",
            "standard",
            "--compile",
            "--root",
            str(tmp_path / "no_data"),
            "encoder.hidden=32",
            "decoder.hidden=32",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(
        r"^  standard +eager [\d.]+, compiled [\d.]+ s/step: [\d.]+x \(compiling: [\d.]+ s", result.stdout, re.M
    ), result.stdout
