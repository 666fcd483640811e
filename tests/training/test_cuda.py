"""CUDA: training, testing, evaluation and figures on a GPU, and checkpoints that move between a GPU
and a CPU. Skipped where there is no GPU (CI); run with `pytest -m gpu` on one. (The command lines on
a GPU: tests/end_to_end/test_cuda_command_line.py.)"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import compose_config

import vaelab
from vaelab import VAE

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
FAST = (
    "trainer=fast",
    "trainer.max_epochs=4",
    "eval.num_samples=50",
    "eval.num_latent_samples=500",
    "figures.every_n_epochs=2",
)


@pytest.mark.parametrize("prior", ["standard", "vamp", "flow"])
def test_training_testing_evaluation_and_figures_run_on_cuda(tmp_path, prior):
    metrics = vaelab.run(compose_config(*FAST, "trainer.accelerator=gpu", f"prior={prior}", f"run_dir={tmp_path}"))
    assert metrics["eval"]["device"] == "cuda"
    assert math.isfinite(metrics["test/nll"])
    assert metrics["test/nll"] <= -metrics["test/elbo"] + 1e-6  # IS estimate of log p(x) >= ELBO
    assert (tmp_path / "latent.png").stat().st_size > 1000 and (tmp_path / "samples.png").exists()
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert "torch.cuda" in state["rng_states"], "a GPU run saves the CUDA random state too"


def test_a_gpu_checkpoint_loads_and_resumes_on_the_cpu_and_back(tmp_path):
    gpu_run, cpu_run = tmp_path / "gpu", tmp_path / "cpu"
    vaelab.run(compose_config(*FAST, "trainer.accelerator=gpu", "prior=vamp", f"run_dir={gpu_run}"))
    vaelab.run(compose_config(*FAST, "prior=vamp", f"run_dir={cpu_run}"))
    x = torch.rand(16, 64) * 16
    for run_dir in (gpu_run, cpu_run):
        ckpt = run_dir / "checkpoints" / "last.ckpt"
        on_cpu = VAE.load_from_checkpoint(ckpt, map_location="cpu")
        on_gpu = VAE.load_from_checkpoint(ckpt, map_location="cuda")
        assert next(on_cpu.parameters()).device.type == "cpu" and next(on_gpu.parameters()).device.type == "cuda"
        torch.testing.assert_close(on_gpu.encode(x.cuda()).mean.cpu(), on_cpu.encode(x).mean, rtol=1e-4, atol=1e-4)
    # a longer budget, resumed on the other device
    on_cpu = vaelab.run(
        compose_config(
            *FAST,
            "prior=vamp",
            "trainer.max_epochs=6",
            f"run_dir={gpu_run}",
            f"resume={gpu_run / 'checkpoints' / 'last.ckpt'}",
        )
    )
    on_gpu = vaelab.run(
        compose_config(
            *FAST,
            "trainer.accelerator=gpu",
            "prior=vamp",
            "trainer.max_epochs=6",
            f"run_dir={cpu_run}",
            f"resume={cpu_run / 'checkpoints' / 'last.ckpt'}",
        )
    )
    assert on_cpu["epochs"] == on_gpu["epochs"] == 6
    assert on_cpu["eval"]["device"] == "cpu" and on_gpu["eval"]["device"] == "cuda"
