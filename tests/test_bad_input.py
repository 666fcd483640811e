"""Bad input: one clear error naming the key, the value and what is allowed, before any work."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import vaelab
from vaelab.config import ConfigError
from vaelab.model import VAE, NonFiniteLossError

from conftest import ROOT

BAD = [
    ("latent_dim=0", "latent_dim=0", "positive integer"),
    ("latent_dim=-3", "latent_dim=-3", "positive integer"),
    ("batch_size=0", "batch_size=0", "positive integer"),
    ("optimizer.lr=0", "optimizer.lr=0", "positive number"),
    ("optimizer.lr=-1e-3", "optimizer.lr=-0.001", "positive number"),
    ("encoder.hidden=0", "encoder.hidden=0", "positive integer"),
    ("decoder.hidden=-1", "decoder.hidden=-1", "positive integer"),
    ("prior=mog prior.num_components=0", "prior.num_components=0", "positive integer"),
    ("prior=vamp prior.num_components=-2", "prior.num_components=-2", "positive integer"),
    ("prior=gtm prior.grid_side=0", "prior.grid_side=0", "positive integer"),
    ("prior=gtm_vamp prior.hidden=0", "prior.hidden=0", "positive integer"),
    ("prior=flow prior.num_layers=0", "prior.num_layers=0", "positive integer"),
    ("prior=flow prior.hidden=0", "prior.hidden=0", "positive integer"),
    ("prior=flow latent_dim=1", "latent_dim=1", "latent_dim >= 2"),
    ("prior=vamp prior.init=zeros", "prior.init='zeros'", "random, data"),
    ("decoder.likelihood=gaussian", "decoder.likelihood='gaussian'", "categorical, bernoulli"),
    ("encoder.activation=relu", "encoder.activation='relu'", "leaky_relu, gated"),
    ("kl_warmup_epochs=-1", "kl_warmup_epochs=-1", "integer >= 0"),
    ("eval.num_samples=0", "eval.num_samples=0", "positive integer"),
    ("eval.chunk_size=-5", "eval.chunk_size=-5", "positive integer"),
    ("eval.exact_grid=15", "eval.exact_grid=15", "even positive integer"),
    ("eval.exact_prior_grid=0", "eval.exact_prior_grid=0", "even positive integer"),
    ("eval.exact_width=0", "eval.exact_width=0", "positive number"),
    ("eval.exact=sometimes", "eval.exact='sometimes'", "auto, true, false"),
    ("eval.exact=true latent_dim=3", "eval.exact=true", "latent_dim <= 2"),
    ("prior=gtm prior.num_layers=0", "prior.num_layers=0", "positive integer"),
    ("trainer.max_time=90min", "trainer.max_time='90min'", "DD:HH:MM:SS"),
    ("trainer.max_time=00:01:75:00", "trainer.max_time='00:01:75:00'", "DD:HH:MM:SS"),
]


@pytest.mark.parametrize(("overrides", "names", "allowed"), BAD, ids=[b[0] for b in BAD])
def test_bad_value_is_rejected_before_any_work(make_cfg, tmp_path, overrides, names, allowed):
    cfg = make_cfg(*overrides.split())
    with pytest.raises(ConfigError) as error:
        vaelab.run(cfg)
    assert names in str(error.value) and allowed in str(error.value)
    assert not (tmp_path / "run").exists(), "nothing may be written before the config is checked"


def test_command_line_reports_a_bad_value_in_one_line_and_fails(tmp_path):
    result = subprocess.run(
        [sys.executable, "train.py", "prior=mog", "prior.num_components=0", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "error: prior.num_components=0 is not allowed: must be a positive integer" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_prior_lists_the_available_ones(tmp_path):
    result = subprocess.run(
        [sys.executable, "train.py", "prior=foo", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "Could not find 'prior/foo'" in result.stderr
    for name in ("standard", "mog", "vamp", "gtm", "gtm_vamp", "flow"):
        assert f"\t{name}\n" in result.stderr


def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(make_cfg, tmp_path, monkeypatch):
    finite_terms = VAE.elbo_terms

    def poisoned_from_epoch_two(self, x, prior=None):
        rec, kl = finite_terms(self, x, prior)
        return (rec * float("nan"), kl) if self.current_epoch >= 2 else (rec, kl)

    monkeypatch.setattr(VAE, "elbo_terms", poisoned_from_epoch_two)
    cfg = make_cfg("trainer.max_epochs=5", "figures.enabled=false")
    with pytest.raises(NonFiniteLossError) as error:
        vaelab.run(cfg)
    message = str(error.value)
    assert "at epoch 2, global step 8 (batch 0)" in message
    assert "last finite metrics: {'epoch': 1, 'step': 7, 'train/loss'" in message
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert last.exists()
    assert torch.load(last, weights_only=False)["epoch"] == 1
