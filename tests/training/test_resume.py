"""Long runs: an interrupted-then-resumed run is the uninterrupted run, exactly; a run directory
that was interrupted resumes by itself; a resume that would change the model, or a corrupt
checkpoint, is refused."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from helpers import compose_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import vaelab
import vaelab.training.fit
from vaelab.errors import ResumeError
from vaelab.training.resume import resume_argv
from vaelab.training.signals import GracefulStop, TrainingInterrupted

# Early stopping (patience 2 after a 2-epoch KL warm-up) ends these runs before max_epochs.
SETTINGS = (
    "trainer=fast",
    "trainer.max_epochs=40",
    "trainer.limit_train_batches=4",
    "early_stopping.patience=2",
    "kl_warmup_epochs=2",
    "eval.num_samples=20",
    "eval.num_latent_samples=200",
    "eval.exact=false",
    "figures.every_n_epochs=3",
)
VOLATILE = ("train_seconds", "eval")  # wall-clock times


def events(run_dir, tag: str) -> list[tuple[int, float]]:
    accumulator = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    accumulator.Reload()
    return [(event.step, event.value) for event in accumulator.Scalars(tag)]


def signal_at_step(monkeypatch, step: int, signum: int = signal.SIGTERM) -> None:
    """Send this process a real signal at the end of training step `step` (before GracefulStop looks)."""

    class SignalledStop(GracefulStop):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == step:
                os.kill(os.getpid(), signum)
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    monkeypatch.setattr(vaelab.training.fit, "GracefulStop", SignalledStop)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The run that the interrupted ones must equal: (run directory, metrics)."""
    run_dir = tmp_path_factory.mktemp("whole")
    return run_dir, vaelab.run(compose_config(*SETTINGS, f"run_dir={run_dir}"))


@pytest.mark.slow  # three runs to early stopping for each
@pytest.mark.parametrize("stop_step", [9, 12], ids=["mid-epoch", "epoch-end"])
def test_interrupted_then_resumed_run_equals_the_uninterrupted_run(uninterrupted, tmp_path, monkeypatch, stop_step):
    whole_dir, whole = uninterrupted

    run_dir = tmp_path / "split"
    signal_at_step(monkeypatch, stop_step)
    with pytest.raises(TrainingInterrupted) as stopped:
        vaelab.run(compose_config(*SETTINGS, f"run_dir={run_dir}"))
    assert stopped.value.signum == signal.SIGTERM and stopped.value.exit_status == 143
    record = json.loads((run_dir / "interrupted.json").read_text())
    assert record["signal"] == "SIGTERM" and record["step"] == stop_step
    assert record["resume"] == f"vaelab-train resume={run_dir.resolve()}"
    assert not (run_dir / "metrics.json").exists()
    earlier = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)["callbacks"]["EpochLog"]
    assert earlier["seconds"] > 0 and earlier["best"] is not None  # training time and best loss so far
    monkeypatch.undo()

    resumed = vaelab.run(compose_config(*SETTINGS, f"run_dir={run_dir}", f"resume={run_dir / 'checkpoints/last.ckpt'}"))
    assert not (run_dir / "interrupted.json").exists()
    assert resumed["train_seconds"] > earlier["seconds"], "a resumed run's training time counts the first process too"
    assert whole["epochs"] < 40, "early stopping must end the run for this test to mean anything"
    for key in set(whole) - set(VOLATILE):
        assert resumed[key] == whole[key], key  # exactly: same draws, same data order, same states
    # TensorBoard continues in the same event directory: every step once, the same values.
    for tag in ("val/loss", "train/loss", "train/kl_weight"):
        assert sorted(events(run_dir, tag)) == sorted(events(whole_dir, tag)), tag


HVAE = ("model=hvae", "prior=vamp", "model.hidden=32")


@pytest.mark.slow  # three runs to early stopping
def test_an_interrupted_then_resumed_hvae_equals_the_uninterrupted_one(tmp_path, monkeypatch):
    """Two stochastic layers and a VampPrior on the top one: every state of the joint model resumes."""
    whole = vaelab.run(compose_config(*SETTINGS, *HVAE, f"run_dir={tmp_path / 'whole'}"))
    run_dir = tmp_path / "split"
    signal_at_step(monkeypatch, 9)
    with pytest.raises(TrainingInterrupted):
        vaelab.run(compose_config(*SETTINGS, *HVAE, f"run_dir={run_dir}"))
    monkeypatch.undo()
    resumed = vaelab.run(
        compose_config(*SETTINGS, *HVAE, f"run_dir={run_dir}", f"resume={run_dir / 'checkpoints/last.ckpt'}")
    )
    assert whole["epochs"] < 40 and "test/kl_bottom" in whole
    for key in set(whole) - set(VOLATILE):
        assert resumed[key] == whole[key], key


@pytest.mark.slow  # two runs to early stopping
def test_a_run_directory_with_interrupted_json_resumes_by_itself(tmp_path, monkeypatch):
    """What a requeued SLURM job or a re-run sweep does: the same command, the same directory."""
    settings = (*SETTINGS, f"run_dir={tmp_path}")
    signal_at_step(monkeypatch, 6, signal.SIGUSR1)
    with pytest.raises(TrainingInterrupted):
        vaelab.run(compose_config(*settings))
    monkeypatch.undo()
    resumed = vaelab.run(compose_config(*settings))
    # Every epoch once. (Sorted: event files of one process within a second are named ...N, ...N+1,
    # and TensorBoard reads "...10" before "...9"; separate processes, as in real use, do not meet that.)
    steps = sorted(step for step, _ in events(tmp_path, "val/loss"))
    assert steps == sorted(set(steps)) and len(steps) == resumed["epochs"]


def test_resume_refuses_a_changed_model_and_a_corrupt_checkpoint(tmp_path, monkeypatch):
    signal_at_step(monkeypatch, 5)
    with pytest.raises(TrainingInterrupted):
        vaelab.run(compose_config(*SETTINGS, f"run_dir={tmp_path}"))
    monkeypatch.undo()
    last = tmp_path / "checkpoints" / "last.ckpt"
    config = (tmp_path / "config.yaml").read_text()
    with pytest.raises(ResumeError, match=r"latent_dim differ from the run's config.yaml"):
        vaelab.run(compose_config(*SETTINGS, f"run_dir={tmp_path}", f"resume={last}", "latent_dim=3"))
    # a longer budget is a resume, not a new run
    assert vaelab.training.resume.changed_keys({"trainer": {"max_epochs": 5}}, {"trainer": {"max_epochs": 50}}) == []

    truncated = tmp_path / "checkpoints" / "truncated.ckpt"
    truncated.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(ResumeError, match=r"truncated.ckpt: not a readable training checkpoint"):
        vaelab.run(compose_config(*SETTINGS, f"run_dir={tmp_path}", f"resume={truncated}"))
    assert (tmp_path / "config.yaml").read_text() == config, "a refused resume writes nothing"


def test_resume_argv_rebuilds_the_runs_command_line(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "checkpoints").mkdir()
    (run_dir / "config.yaml").write_text("seed: 1\n")
    (run_dir / ".hydra" / "overrides.yaml").write_text("- prior=vamp\n- trainer.max_epochs=10\n")
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"x")

    argv = resume_argv([f"resume={run_dir}", "trainer.max_epochs=20"])
    assert argv == [
        "prior=vamp",
        "trainer.max_epochs=20",
        f"resume={run_dir / 'checkpoints' / 'last.ckpt'}",
        f"hydra.run.dir={run_dir}",
    ]
    assert resume_argv(["prior=mog"]) == ["prior=mog"]
    with pytest.raises(ResumeError, match=r"latent_dim=4 is not allowed with resume="):
        resume_argv([f"resume={run_dir}", "latent_dim=4"])
    with pytest.raises(ResumeError, match=r"holds no vaelab run"):
        resume_argv([f"resume={tmp_path}"])
    with pytest.raises(ResumeError, match=r"no such run directory"):
        resume_argv([f"resume={tmp_path / 'nothing'}"])
    with pytest.raises(ResumeError, match=r"to resume a sweep"):
        resume_argv(["-m", f"resume={run_dir}"])


# Dynamically binarized MNIST: training batches drawn afresh at each draw, 4 batches per epoch.
DYNAMIC = (
    "dataset=mnist",
    "dataset.datamodule.limit=200",
    "batch_size=50",
    "trainer=fast",
    "trainer.max_epochs=3",
    "eval.num_samples=10",
    "eval.num_latent_samples=100",
    "eval.quality.enabled=false",
    "figures.enabled=false",
)


@pytest.mark.slow  # two short runs on MNIST and a resume
def test_a_resumed_run_on_dynamic_mnist_draws_the_same_binarizations(tmp_path, monkeypatch):
    whole = vaelab.run(compose_config(*DYNAMIC, f"run_dir={tmp_path / 'whole'}"))
    assert whole["epochs"] == 3 and whole["eval"]["num_inputs"] == 200
    assert whole["test/nll"] <= -whole["test/elbo"] + 1e-3
    run_dir = tmp_path / "split"
    signal_at_step(monkeypatch, 6)  # in the middle of the second epoch
    with pytest.raises(TrainingInterrupted):
        vaelab.run(compose_config(*DYNAMIC, f"run_dir={run_dir}"))
    monkeypatch.undo()
    resumed = vaelab.run(compose_config(*DYNAMIC, f"run_dir={run_dir}", f"resume={run_dir / 'checkpoints/last.ckpt'}"))
    for key in set(whole) - set(VOLATILE):
        assert resumed[key] == whole[key], key
