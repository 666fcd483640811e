"""scripts/bench.py runs end to end on a tiny budget and prints every figure it promises."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT


def test_bench_prints_epoch_times_ratios_the_vamp_floor_and_lightning_overhead(tmp_path):
    result = subprocess.run(
        [sys.executable, "scripts/bench.py", "--steps", "2", "--warmup", "1", "--repeats", "1", "--threads", "1",
         "--priors", "standard", "mog", "vamp", "--root", str(tmp_path / "no_data"), "encoder.hidden=32",
         "decoder.hidden=32"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "random bits of the same shape" in out and "overrides: encoder.hidden=32 decoder.hidden=32" in out
    rows = dict(re.findall(r"^  (standard|mog|vamp|vamp, naive log_prob) +[\d.]+ +[\d.]+ +([\d.]+)x$", out, re.M))
    assert set(rows) == {"standard", "mog", "vamp", "vamp, naive log_prob"}, out
    assert float(rows["standard"]) == 1.0 and all(float(ratio) > 0 for ratio in rows.values())
    assert re.search(r"floor for vamp: .* = [\d.]+ s/step, [\d.]+x standard; vamp / floor = [\d.]+", out), out
    assert len(re.findall(r"plain [\d.]+ s/step, Lightning [\d.]+ s/step: [\d.]+x", out)) == 2, out
