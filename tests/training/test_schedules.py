"""How the prior is optimised (the `schedule` group): one optimizer (joint), the prior's own
learning rate (separate_lr), or alternating steps of the encoder and decoder and of the prior;
each resumes exactly after SIGTERM, and what cannot work is one line before any work."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from helpers import SHORT_RUN, compose_config
from test_resume import SETTINGS, VOLATILE, signal_at_step

import vaelab
from vaelab.config import check_config
from vaelab.data import DigitsDataModule
from vaelab.errors import ConfigError
from vaelab.training.signals import TrainingInterrupted

pytestmark = pytest.mark.usefixtures("one_thread")


def test_separate_lr_puts_the_prior_in_a_group_of_its_own():
    cfg = compose_config("prior=mog", "schedule=separate_lr", "schedule.prior_lr_factor=5", "optimizer.lr=0.002")
    model = vaelab.build(cfg)
    groups = model.configure_optimizers().param_groups
    prior = {id(p) for p in model.prior.parameters()}
    assert [group["lr"] for group in groups] == [0.002, pytest.approx(0.01)]
    assert {id(p) for p in groups[1]["params"]} == prior and not prior & {id(p) for p in groups[0]["params"]}
    assert sum(len(group["params"]) for group in groups) == len(list(model.parameters()))


def test_alternating_steps_the_autoencoder_once_and_the_prior_k_times_per_batch(tmp_path):
    cfg = compose_config("prior=mog", "schedule=alternating", "schedule.prior_steps=3", f"run_dir={tmp_path}")
    model = vaelab.build(cfg)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=-1, max_epochs=1, limit_train_batches=2, limit_val_batches=0,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32))
    autoencoder, prior = trainer.optimizers
    steps = lambda optimizer: {int(state["step"]) for state in optimizer.state.values()}
    assert steps(autoencoder) == {2} and steps(prior) == {6}  # 2 batches: 1 and 3 steps each
    assert all(not torch.equal(before[name], p) for name, p in model.named_parameters())


def test_the_prior_steps_of_alternating_leave_the_encoder_and_decoder_alone(tmp_path):
    model = vaelab.build(compose_config("prior=vamp", "schedule=alternating", f"run_dir={tmp_path}"))
    x = torch.rand(16, 64) * 16
    autoencoder = {name: p.detach().clone() for name, p in model.named_parameters() if not name.startswith("prior.")}
    _, prior = model.configure_optimizers()
    z = model.encode(x).sample()
    (-model.prior_dist(batch=x).log_prob(z).mean()).backward()
    prior.step()
    assert all(torch.equal(autoencoder[name], p) for name, p in model.named_parameters() if name in autoencoder)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("schedule=alternating",), r"^schedule='alternating' is not allowed: needs a prior with parameters to train"),
        (("prior=mog", "schedule=alternating", "trainer=ddp_cpu"), r"^schedule.name='alternating' .*one process"),
        (("prior=mog", "schedule=alternating", "+trainer.gradient_clip_val=1.0"), r"^trainer.gradient_clip_val=1.0"),
        (("prior=mog", "schedule=separate_lr", "schedule.prior_lr_factor=0"), r"^schedule.prior_lr_factor=0"),
    ],
    ids=["no-prior-parameters", "ddp", "clipping", "factor"],
)
def test_what_a_schedule_cannot_do_is_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message):
        check_config(compose_config(*overrides), machine=False, files=False)


@pytest.mark.slow  # three runs to early stopping for each
@pytest.mark.parametrize("schedule", ["separate_lr", "alternating"])
def test_an_interrupted_then_resumed_run_with_a_schedule_equals_the_uninterrupted_one(tmp_path, monkeypatch, schedule):
    settings = (*SETTINGS, "prior=mog", f"schedule={schedule}")
    whole = vaelab.run(compose_config(*settings, f"run_dir={tmp_path / 'whole'}"))
    run_dir = tmp_path / "split"
    signal_at_step(monkeypatch, 18 if schedule == "alternating" else 9)  # alternating: 2 optimizer steps a batch
    with pytest.raises(TrainingInterrupted):
        vaelab.run(compose_config(*settings, f"run_dir={run_dir}"))
    monkeypatch.undo()
    resumed = vaelab.run(compose_config(*settings, f"run_dir={run_dir}", f"resume={run_dir / 'checkpoints/last.ckpt'}"))
    assert whole["epochs"] < 40
    for key in set(whole) - set(VOLATILE):
        assert resumed[key] == whole[key], key


def test_a_post_hoc_fit_of_an_alternating_run_trains_its_prior_with_one_optimizer(tmp_path):
    from vaelab.posthoc.fit import fit

    vaelab.run(compose_config(*SHORT_RUN, "prior=mog", "schedule=alternating", f"run_dir={tmp_path / 'run'}"))
    record = fit(tmp_path / "run", "flow", ["trainer.max_epochs=1"], out=tmp_path / "flow")
    assert record["after"]["test/rec"] == record["before"]["test/rec"]
