"""The VAE module: a checkpoint restores it exactly, the ELBO's gradients reach every parameter, the
KL warm-up is linear, and a validation epoch builds p(z) once."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from helpers import PRIORS

import vaelab
from vaelab.data import DigitsDataModule
from vaelab.model import VAE


@pytest.mark.parametrize("prior", PRIORS)
def test_checkpoint_round_trip_reproduces_log_probs_exactly(make_cfg, tmp_path, prior):
    cfg = make_cfg(f"prior={prior}")
    pl.seed_everything(0)
    model = vaelab.build(cfg)
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=64))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)

    restored = VAE.load_from_checkpoint(path)
    model.eval(), restored.eval()
    x = DigitsDataModule().load()["test"][0][:32]
    z = torch.randn(32, cfg.latent_dim)
    with torch.no_grad():
        # the same random stream for each: an importance-sampled log p(z) (latent_vae) draws numbers
        log_pz = [torch.manual_seed(0) and m.prior_dist().log_prob(z) for m in (model, restored)]
        assert torch.equal(*log_pz)
        assert torch.equal(model.encode(x).log_prob(z), restored.encode(x).log_prob(z))
        assert torch.equal(model.decode(z).log_prob(x), restored.decode(z).log_prob(x))
    assert type(restored.prior) is type(model.prior)


@pytest.mark.parametrize("prior", PRIORS)
def test_gradients_of_the_elbo_reach_every_parameter(make_cfg, prior):
    torch.manual_seed(0)
    model = vaelab.build(make_cfg(f"prior={prior}"))
    x = DigitsDataModule().load()["train"][0][:64]
    rec, kl = model.elbo_terms(x)
    (-(rec - kl).mean()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_kl_warmup_is_linear_then_one(make_cfg):
    model = vaelab.build(make_cfg("kl_warmup_epochs=4"))
    weights = []
    for epoch in range(6):
        model.trainer = type("T", (), {"current_epoch": epoch})()  # the only trainer attribute it reads
        weights.append(model.kl_weight())
    assert weights == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


@pytest.mark.parametrize("prior", ["vamp", "gtm_vamp", "mog"])
def test_validation_builds_the_prior_once_and_gives_the_per_batch_result(make_cfg, prior, monkeypatch):
    """p(z) is frozen for a validation epoch (the parameters do not change in it): the same loss as
    rebuilding it for every batch, one prior_dist() call instead of one per batch."""
    cfg = make_cfg(f"prior={prior}", "trainer.limit_val_batches=4", "batch_size=32")
    model, datamodule = vaelab.build(cfg), DigitsDataModule(batch_size=32, eval_batch_size=32)
    calls = []
    prior_dist = VAE.prior_dist
    monkeypatch.setattr(VAE, "prior_dist", lambda self, batch=None: calls.append(1) or prior_dist(self, batch))

    def validate() -> float:
        trainer = pl.Trainer(
            accelerator="cpu", limit_val_batches=4, logger=False, enable_progress_bar=False, enable_model_summary=False
        )
        torch.manual_seed(0)
        (result,) = trainer.validate(model, datamodule=datamodule, verbose=False)
        return result["val/loss"]

    frozen = validate()
    assert len(calls) == 1 and model.frozen_prior is None  # built once, dropped at the epoch's end
    calls.clear()
    monkeypatch.setattr(VAE, "_freeze_prior", lambda self: None)  # every batch rebuilds p(z)
    rebuilt = validate()
    assert len(calls) == 4
    assert frozen == pytest.approx(rebuilt, rel=1e-6)
