"""A training run (`vaelab.run`) and the model it builds (`vaelab.build`): the same seed gives the
same run, a time budget ends training and the run is still tested, a non-finite loss stops it with
the last good checkpoint, and building a model needs neither the GPU nor the data files."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import CHEAP_EVAL, compose_config

import vaelab
from vaelab.data import DigitsDataModule
from vaelab.errors import NonFiniteLossError
from vaelab.model import VAE

QUICK = ("figures.enabled=false", *CHEAP_EVAL)


def test_same_seed_gives_the_same_run(make_cfg, tmp_path):
    runs = [vaelab.run(make_cfg("prior=mog", f"run_dir={tmp_path / str(i)}", *QUICK)) for i in range(2)]
    assert runs[0]["test/loss"] == runs[1]["test/loss"]
    assert runs[0]["best_val_loss"] == runs[1]["best_val_loss"]


def test_data_init_copies_training_inputs_into_pseudo_inputs(make_cfg):
    model = vaelab.build(make_cfg("prior=vamp", "prior.init=data"))
    train_x = DigitsDataModule().load()["train"][0]
    prior = model.prior
    u = prior.pseudo_inputs()
    assert u.shape == (16, 64)
    margin = prior.DATA_MARGIN * (prior.input_max - prior.input_min)  # learnable ones start inside the range
    inside = train_x.clamp(prior.input_min + margin, prior.input_max - margin)
    assert all((inside == row).all(dim=1).any() for row in u)


def test_max_time_ends_training_and_the_run_is_still_tested(make_cfg):
    """trainer.max_time is a wall-clock budget: training stops when it is spent (here at once,
    after the first step), the best checkpoint is tested and metrics.json is written."""
    metrics = vaelab.run(make_cfg("trainer.max_time=00:00:00:00", "trainer.max_epochs=50", *QUICK))
    assert metrics["epochs"] <= 1 and math.isfinite(metrics["test/nll"])


def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(make_cfg, tmp_path, monkeypatch):
    finite_terms = VAE.elbo_terms

    def poisoned_from_epoch_two(self, x, prior=None):
        rec, kl = finite_terms(self, x, prior)
        return (rec * float("nan"), kl) if self.current_epoch >= 2 else (rec, kl)

    monkeypatch.setattr(VAE, "elbo_terms", poisoned_from_epoch_two)
    cfg = make_cfg("trainer.max_epochs=5", "figures.enabled=false", "checkpoint.last_every_seconds=0")
    with pytest.raises(NonFiniteLossError) as error:
        vaelab.run(cfg)
    message = str(error.value)
    assert "at epoch 2, global step 8 (batch 0)" in message
    assert "last finite metrics: {'epoch': 1, 'step': 7, 'train/loss'" in message
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert last.exists()
    assert torch.load(last, weights_only=False)["epoch"] == 1


def test_building_a_model_does_not_need_the_gpu_or_the_data_files(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = compose_config("trainer=gpu", "dataset=binarized_mnist", "dataset.root=/nonexistent", "run_dir=unused")
    assert isinstance(vaelab.build(cfg), VAE)  # e.g. in a notebook, or to load a GPU run's weights
