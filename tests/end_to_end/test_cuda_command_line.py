"""CUDA on the real command line: vaelab-train, vaelab-evaluate and DDP on GPUs, for the one-level
model and a convolutional HVAE. Skipped where there is no GPU (CI); run with `pytest -m gpu` on one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from helpers import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_the_command_line_the_evaluate_script_and_ddp_run_on_cuda(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "train.py",
            "trainer=gpu",
            "trainer.max_epochs=3",
            "eval.num_samples=50",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = tmp_path / "eval.json"
    evaluated = subprocess.run(
        [sys.executable, "-m", "vaelab.cli.evaluate", str(tmp_path / "run"), "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    written = json.loads(out.read_text())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["eval"]["device"] == "cuda"
    assert written["test/nll"] == pytest.approx(metrics["test/nll"], abs=1e-3)

    ddp = subprocess.run(
        [
            sys.executable,
            "train.py",
            "trainer=ddp",
            "trainer.max_epochs=2",
            "eval.num_samples=50",
            "figures.enabled=false",
            f"hydra.run.dir={tmp_path / 'ddp'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert json.loads((tmp_path / "ddp" / "metrics.json").read_text())["epochs"] == 2


def test_a_convolutional_hvae_with_pseudo_inputs_trains_draws_and_evaluates_on_cuda(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "train.py",
            "trainer=gpu",
            "model=hvae",
            "encoder=conv",
            "decoder=conv",
            "prior=vamp",
            "trainer.max_epochs=2",
            "figures.every_n_epochs=1",
            "eval.num_samples=50",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    for name in ("latent", "samples", "pseudo_inputs"):
        assert (tmp_path / "run" / f"{name}.png").is_file(), name
    out = tmp_path / "eval.json"
    evaluated = subprocess.run(
        [sys.executable, "-m", "vaelab.cli.evaluate", str(tmp_path / "run"), "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    written = json.loads(out.read_text())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["eval"]["device"] == "cuda" and "test/kl_bottom" in written
    assert written["test/nll"] == pytest.approx(metrics["test/nll"], abs=1e-3)
