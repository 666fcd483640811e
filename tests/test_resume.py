"""Long runs: an interrupted-then-resumed run is the uninterrupted run, exactly."""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest
import torch
from conftest import compose_config
from lightning_fabric.plugins.io import torch_io
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import vaelab
import vaelab.training.fit
from vaelab.data import BatchIndices
from vaelab.errors import ResumeError
from vaelab.files import atomic_write
from vaelab.training.checkpoints import AtomicCheckpointIO
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


@pytest.mark.parametrize("stop_step", [9, 12], ids=["mid-epoch", "epoch-end"])
def test_interrupted_then_resumed_run_equals_the_uninterrupted_run(tmp_path, monkeypatch, stop_step):
    whole = vaelab.run(compose_config(*SETTINGS, f"run_dir={tmp_path / 'whole'}"))

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
        assert sorted(events(run_dir, tag)) == sorted(events(tmp_path / "whole", tag)), tag


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


def test_batch_indices_resume_with_the_next_batch_of_the_same_epoch():
    whole = BatchIndices(100, 10, shuffle=True, seed=3)
    whole.set_epoch(4)
    batches = list(whole)
    stopped = BatchIndices(100, 10, shuffle=True, seed=3)
    stopped.set_epoch(4)
    iterator = iter(stopped)
    for _ in range(3):  # the loop ran 3 steps
        next(iterator)
    state = stopped.state_dict()
    assert state == {"epoch": 4, "consumed": 3}

    resumed = BatchIndices(100, 10, shuffle=True, seed=3)
    resumed.load_state_dict(state)
    resumed.set_epoch(4)
    assert list(resumed) == batches[3:]
    resumed.set_epoch(5)  # the skip applies to the interrupted epoch only
    assert len(list(resumed)) == 10


def test_a_failed_checkpoint_write_leaves_the_previous_one_loadable(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 1}, path)

    def half_written(checkpoint, filepath):  # the process dies half-way through writing the file
        with open(filepath, "wb") as handle:
            handle.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch_io, "_atomic_save", half_written)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path)["epoch"] == 1
    assert list(tmp_path.iterdir()) == [path], "no temporary file is left behind"
    with pytest.raises(RuntimeError):
        atomic_write(path, lambda tmp: (tmp.write_text("partial"), (_ for _ in ()).throw(RuntimeError("killed"))))
    assert torch.load(path)["epoch"] == 1


@pytest.mark.parametrize(("every_seconds", "expected"), [(0, [0, 1, 2, 3, 4]), (3600, [4])])
def test_last_ckpt_is_written_by_time_and_at_the_end_and_best_holds_the_weights(
    tmp_path, monkeypatch, every_seconds, expected
):
    written = []
    save = AtomicCheckpointIO.save_checkpoint

    def spy(self, checkpoint, path, storage_options=None):
        written.append((str(path).rsplit("/", 1)[-1], checkpoint["epoch"], "optimizer_states" in checkpoint))
        save(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", spy)
    vaelab.run(
        compose_config(
            "trainer=fast",
            "trainer.max_epochs=5",
            "figures.enabled=false",
            "eval.num_samples=5",
            "eval.exact=false",
            "eval.num_latent_samples=100",
            f"checkpoint.last_every_seconds={every_seconds}",
            f"run_dir={tmp_path}",
        )
    )
    assert [epoch for name, epoch, _ in written if name == "last.ckpt"] == expected
    assert all(full for name, _, full in written if name == "last.ckpt"), "last.ckpt holds the whole training state"
    best = [(name, full) for name, _, full in written if name.startswith("best-")]
    assert best and not any(full for _, full in best), "best-*.ckpt holds the weights only"
    with pytest.raises(ResumeError, match=r"holds the weights only"):
        vaelab.run(
            compose_config("trainer=fast", f"run_dir={tmp_path}", f"resume={tmp_path / 'checkpoints' / best[-1][0]}")
        )


def test_a_run_stopped_inside_an_epoch_leaves_its_final_state_in_last_ckpt(tmp_path):
    vaelab.run(
        compose_config(
            "trainer=fast",
            "trainer.max_epochs=5",
            "+trainer.max_steps=6",
            "figures.enabled=false",
            "eval.num_samples=5",
            "eval.num_latent_samples=100",
            "eval.exact=false",
            f"run_dir={tmp_path}",
        )
    )
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 6 and "optimizer_states" in state  # 4 steps per epoch: stopped in the second


def test_background_checkpoints_hold_the_state_at_saving_and_keep_their_order(tmp_path, monkeypatch):
    from vaelab.training.checkpoints import BackgroundCheckpointIO

    io, gate, threads = BackgroundCheckpointIO(), threading.Event(), set()
    save = AtomicCheckpointIO.save_checkpoint

    def slow(self, checkpoint, path, storage_options=None):  # the disk is slow: training goes on meanwhile
        threads.add(threading.current_thread().name)
        gate.wait(10)
        save(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", slow)
    weights = torch.ones(3)
    io.save_checkpoint({"state_dict": {"w": weights}}, tmp_path / "best-001.ckpt")
    weights.add_(1)  # the optimizer's next step, in place, before the file is written
    io.remove_checkpoint(tmp_path / "best-001.ckpt")  # queued behind the write: removes the written file
    io.save_checkpoint({"state_dict": {"w": weights}}, tmp_path / "best-002.ckpt")
    assert not (tmp_path / "best-002.ckpt").exists()
    gate.set()
    io.teardown()  # what Lightning calls at the end of fit and on an exception
    assert [p.name for p in tmp_path.iterdir()] == ["best-002.ckpt"]
    assert torch.equal(torch.load(tmp_path / "best-002.ckpt")["state_dict"]["w"], torch.full((3,), 2.0))
    assert threading.current_thread().name not in threads

    def full(self, checkpoint, path, storage_options=None):
        raise OSError("disk full")

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", full)
    with pytest.raises(OSError, match="disk full"):  # at the next save or at the latest at teardown
        io.save_checkpoint({"state_dict": {"w": weights}}, tmp_path / "best-003.ckpt")
        io.teardown()
