"""Runs saved by vaelab 0.1 (a flat package: `vaelab.nets`, `vaelab.priors`, `vaelab.data` modules
named in their configs and checkpoints) load, compute what they computed then, evaluate and resume
(tests/data/legacy_runs/README.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from vaelab.cli import evaluate as evaluate_command
from vaelab.model import VAE
from vaelab.rundir import RunDir
from vaelab.training.fit import run
from vaelab.training.resume import changed_keys

LEGACY = Path(__file__).parent / "data" / "legacy_runs"
EXPECTED = json.loads((LEGACY / "expected.json").read_text())
WRITTEN_IN = "/tmp/oldruns"  # where vaelab 0.1 wrote them: their config.yaml names this folder


def copy_run(name: str, tmp_path: Path) -> Path:
    """The legacy run in a folder of its own, its config's paths pointing there."""
    target = tmp_path / name
    shutil.copytree(LEGACY / name, target)
    for path in (target / "config.yaml", *(target / ".hydra").glob("*.yaml")):
        path.write_text(path.read_text().replace(f"{WRITTEN_IN}/{name}", str(target)))
    return target


@pytest.mark.parametrize("name", ["vamp", "maf"])
def test_a_legacy_checkpoint_computes_what_it_computed(name):
    model = VAE.load_from_checkpoint(LEGACY / name / "checkpoints" / "best-002.ckpt", map_location="cpu").eval()
    expected = EXPECTED[name]
    z, x = torch.tensor(expected["z"]), torch.tensor(expected["x"])
    with torch.no_grad():
        assert model.prior_dist().log_prob(z).tolist() == pytest.approx(expected["log_pz"], rel=1e-6)
        assert model.decode(z[:3]).log_prob(x).tolist() == pytest.approx(expected["log_px_given_z"], rel=1e-6)
        assert torch.tensor(expected["q_mean"]).allclose(model.encode(x).mean, rtol=1e-6, atol=1e-7)


def test_a_legacy_run_is_evaluated_by_the_current_command(tmp_path, capsys):
    run_dir = copy_run("vamp", tmp_path)
    before = json.loads((run_dir / "metrics.json").read_text())
    results = evaluate_command.main([str(run_dir), "eval.num_samples=10", "eval.num_latent_samples=100"])
    assert results["test/nll"] == pytest.approx(before["test/nll"], abs=1e-4)  # the same settings and seed
    assert "updated" in capsys.readouterr().out


def test_a_legacy_run_resumes_from_its_last_checkpoint(tmp_path):
    run_dir = copy_run("vamp", tmp_path)
    cfg = OmegaConf.load(run_dir / "config.yaml")
    cfg.run_dir, cfg.resume = str(run_dir), str(RunDir(run_dir).last)
    cfg.trainer.max_epochs = 4
    metrics = run(cfg)
    assert metrics["epochs"] == 4 and json.loads((run_dir / "metrics.json").read_text())["epochs"] == 4


def test_a_run_saved_before_the_model_group_resumes_under_a_config_that_has_it(tmp_path):
    """Today's config has `model` (vae by default); a run saved without it is that model."""
    saved = OmegaConf.to_container(OmegaConf.load(copy_run("vamp", tmp_path) / "config.yaml"))
    assert "model" not in saved
    assert changed_keys(saved, {**saved, "model": {"name": "vae"}}) == []
    assert changed_keys(saved, {**saved, "model": {"name": "hvae", "bottom_dim": 2}}) == ["model"]
