"""Post-hoc priors: a new prior fitted to a trained run with the encoder and decoder frozen
(`vaelab.posthoc.fit`): only the prior's terms of the ELBO move, the refit is a run directory of its
own whose checkpoint describes the new prior, and VampPriors fit through the frozen encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from hydra.utils import instantiate
from omegaconf import OmegaConf

from vaelab import VAE
from vaelab.cli import evaluate as evaluate_command
from vaelab.evaluation.runner import evaluate_test_set
from vaelab.posthoc.fit import fit


@pytest.fixture(scope="module")
def mog_fit(joint_run) -> dict:
    return fit(joint_run, "mog", ["trainer.max_epochs=20"])


def test_a_mixture_fitted_post_hoc_keeps_the_elbo_and_lowers_the_marginal_kl(mog_fit):
    before, after = mog_fit["before"], mog_fit["after"]
    assert mog_fit["before_from"] == "the run's metrics.json"
    # Same encoder, same evaluation seed: the same z ~ q(z|x), so only the prior's terms can move.
    assert after["test/rec"] == before["test/rec"]
    assert after["test/entropy"] == before["test/entropy"]
    assert after["test/elbo"] >= before["test/elbo"] - 0.05
    assert after["test/marginal_kl"] < before["test/marginal_kl"]
    assert after["test/elbo"] - before["test/elbo"] == pytest.approx(before["test/kl"] - after["test/kl"], abs=1e-9)


def test_only_the_prior_changes_and_the_checkpoint_describes_the_new_prior(joint_run, mog_fit):
    out = Path(mog_fit["out"])
    assert out == joint_run / "posthoc" / "mog"
    metrics = json.loads((out / "metrics.json").read_text())
    source = torch.load(mog_fit["source_checkpoint"], map_location="cpu", weights_only=False)
    refit = torch.load(out / metrics["best_checkpoint"], map_location="cpu", weights_only=False)
    frozen = [key for key in source["state_dict"] if key.startswith(("encoder.", "decoder."))]
    assert frozen and all(torch.equal(source["state_dict"][k], refit["state_dict"][k]) for k in frozen)
    assert all(key.startswith("prior.") for key in refit["state_dict"] if key not in frozen)
    assert refit["hyper_parameters"]["prior"]["_target_"] == "vaelab.priors.MoGPrior"
    assert refit["hyper_parameters"]["kl_warmup_epochs"] == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["prior"]["_target_"] == "vaelab.priors.MoGPrior"
    assert "vaelab posthoc: standard → mog" in (out / "train.log").read_text()


def test_the_refit_checkpoint_round_trips_and_evaluates(mog_fit, capsys):
    out = Path(mog_fit["out"])
    metrics = json.loads((out / "metrics.json").read_text())
    model = VAE.load_from_checkpoint(out / metrics["best_checkpoint"], map_location="cpu")
    cfg = OmegaConf.load(out / "config.yaml")
    again = evaluate_test_set(model, instantiate(cfg.dataset.datamodule), cfg)
    assert again["test/elbo"] == metrics["test/elbo"] and again["test/nll"] == metrics["test/nll"]
    results = evaluate_command.main([str(out)])  # the run directory of a refit is a run directory
    assert results["test/elbo"] == metrics["test/elbo"]


def test_vamp_priors_fit_through_the_frozen_encoder(joint_run, tmp_path):
    record = fit(joint_run, "vamp_data", ["trainer.max_epochs=2", "prior.num_components=8"], out=tmp_path / "vd")
    model = VAE.load_from_checkpoint(next((tmp_path / "vd" / "checkpoints").glob("best-*.ckpt")), map_location="cpu")
    assert model.prior.pseudo_inputs().shape == (8, 64)  # training digits, kept fixed
    assert record["after"]["test/rec"] == record["before"]["test/rec"]
