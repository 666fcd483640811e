"""Training end to end: Hydra compose API and the real command line, checkpoints, run files."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import pytorch_lightning as pl
import torch
from conftest import PRIORS, ROOT
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import vaelab
from vaelab import VAE
from vaelab.data import DigitsDataModule

QUICK = ("figures.enabled=false", "eval.num_samples=10", "eval.exact=false")


def scalars(run_dir, tag: str) -> list[float]:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return [event.value for event in events.Scalars(tag)]


@pytest.mark.parametrize("prior", PRIORS)
def test_every_prior_trains_through_compose_and_validation_loss_goes_down(make_cfg, prior):
    cfg = make_cfg(f"prior={prior}", "trainer.max_epochs=6", "trainer.limit_train_batches=8", *QUICK)
    metrics = vaelab.run(cfg)

    run_dir = ROOT / cfg.run_dir
    val_loss = scalars(run_dir, "val/loss")
    assert len(val_loss) == 6
    assert val_loss[-1] < val_loss[0]
    assert {"train/loss", "train/rec", "train/kl", "val/rec", "val/kl"} <= set(
        EventAccumulator(str(run_dir / "tensorboard")).Reload().Tags()["scalars"]
    )
    written = json.loads((run_dir / "metrics.json").read_text())
    assert written["test/loss"] == pytest.approx(metrics["test/loss"])
    assert torch.isfinite(torch.tensor(written["test/loss"]))
    assert (run_dir / "checkpoints" / "last.ckpt").exists()
    assert (run_dir / written["best_checkpoint"]).exists()
    assert "_target_: vaelab.priors" in (run_dir / "config.yaml").read_text()


@pytest.mark.slow
def test_every_prior_trains_from_the_command_line(tmp_path):
    """All ten priors from one command line (a multirun: one start-up instead of ten)."""
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            "-m",
            f"prior={','.join(PRIORS)}",
            "trainer=fast",
            *QUICK,
            f"hydra.sweep.dir={tmp_path}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for index, prior in enumerate(PRIORS):
        job = tmp_path / f"{index}_{prior}_seed42"
        assert json.loads((job / "metrics.json").read_text())["epochs"] == 3, prior
        assert "vaelab: prior=" in (job / "train.log").read_text()


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
        assert torch.equal(model.prior_dist().log_prob(z), restored.prior_dist().log_prob(z))
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


def test_kl_warmup_is_linear_then_one(make_cfg):
    model = vaelab.build(make_cfg("kl_warmup_epochs=4"))
    weights = []
    for epoch in range(6):
        model.trainer = type("T", (), {"current_epoch": epoch})()  # the only trainer attribute it reads
        weights.append(model.kl_weight())
    assert weights == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


def test_digits_split_and_whole_batch_loading():
    datamodule = DigitsDataModule(batch_size=64)
    datamodule.setup()
    sizes = {name: len(x) for name, (x, y) in datamodule.splits.items()}
    assert sizes == {"train": 1000, "val": 350, "test": 447}
    x, y = next(iter(datamodule.train_dataloader()))
    assert x.shape == (64, 64) and y.shape == (64,) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 16 and torch.equal(x, x.round())
    batches = list(datamodule.test_dataloader())
    assert sum(len(b[0]) for b in batches) == 447
    assert torch.equal(torch.cat([b[0] for b in batches]), datamodule.splits["test"][0])


@pytest.mark.parametrize("prior", ["vamp", "gtm_vamp", "mog"])
def test_validation_builds_the_prior_once_and_gives_the_per_batch_result(make_cfg, prior, monkeypatch):
    """p(z) is frozen for a validation epoch (the parameters do not change in it): the same loss as
    rebuilding it for every batch, one prior_dist() call instead of one per batch."""
    cfg = make_cfg(f"prior={prior}", "trainer.limit_val_batches=4", "batch_size=32")
    model, datamodule = vaelab.build(cfg), DigitsDataModule(batch_size=32, eval_batch_size=32)
    calls = []
    prior_dist = VAE.prior_dist
    monkeypatch.setattr(VAE, "prior_dist", lambda self: calls.append(1) or prior_dist(self))

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


def test_max_time_ends_training_and_the_run_is_still_tested(make_cfg):
    """trainer.max_time is a wall-clock budget: training stops when it is spent (here at once,
    after the first step), the best checkpoint is tested and metrics.json is written."""
    metrics = vaelab.run(make_cfg("trainer.max_time=00:00:00:00", "trainer.max_epochs=50", *QUICK))
    assert metrics["epochs"] <= 1 and math.isfinite(metrics["test/nll"])


def test_last_ckpt_is_the_last_epoch_and_best_is_the_lowest_validation_loss(make_cfg, tmp_path, monkeypatch):
    # A validation loss that rises every epoch: the best checkpoint is epoch 0, the last one epoch 2.
    monkeypatch.setattr(
        VAE, "validation_step", lambda self, batch, idx: self.log("val/loss", float(self.current_epoch))
    )
    vaelab.run(make_cfg("trainer.max_epochs=3", "early_stopping.patience=10", *QUICK))
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(path.name for path in checkpoints.iterdir()) == ["best-000.ckpt", "last.ckpt"]
    assert torch.load(checkpoints / "last.ckpt", weights_only=False)["epoch"] == 2
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["best_checkpoint"] == "checkpoints/best-000.ckpt"
