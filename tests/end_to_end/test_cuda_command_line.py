"""CUDA on the real command line: vaelab-train, vaelab-evaluate and DDP on GPUs, for the one-level
model and a convolutional HVAE. Skipped where there is no GPU (CI); run with `pytest -m gpu` on one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def command(*args: str) -> None:
    """`python <args>` in the project root, which must succeed."""
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def evaluated_on_cuda(run_dir: Path) -> dict:
    """`vaelab-evaluate` of the run: on cuda, and with the test NLL the run wrote. Its record."""
    out = run_dir.parent / "eval.json"
    command("-m", "vaelab.cli.evaluate", str(run_dir), "--json", str(out))
    written = json.loads(out.read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert written["eval"]["device"] == "cuda"
    assert written["test/nll"] == pytest.approx(metrics["test/nll"], abs=1e-3)
    return written


def test_the_command_line_the_evaluate_script_and_ddp_run_on_cuda(tmp_path):
    command(
        "train.py", "trainer=gpu", "trainer.max_epochs=3", "eval.num_samples=50", f"hydra.run.dir={tmp_path / 'run'}"
    )
    evaluated_on_cuda(tmp_path / "run")
    ddp = tmp_path / "ddp"
    command(
        "train.py", "trainer=ddp", "trainer.max_epochs=2", "eval.num_samples=50", "figures.enabled=false",
        f"hydra.run.dir={ddp}",
    )  # fmt: skip
    assert json.loads((ddp / "metrics.json").read_text())["epochs"] == 2


def test_a_convolutional_hvae_with_pseudo_inputs_trains_draws_and_evaluates_on_cuda(tmp_path):
    run_dir = tmp_path / "run"
    command(
        "train.py", "trainer=gpu", "model=hvae", "encoder=conv", "decoder=conv", "prior=vamp",
        "trainer.max_epochs=2", "figures.every_n_epochs=1", "eval.num_samples=50", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    for name in ("latent", "samples", "pseudo_inputs"):
        assert (run_dir / f"{name}.png").is_file(), name
    assert "test/kl_bottom" in evaluated_on_cuda(run_dir)
