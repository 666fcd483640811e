"""Checkpoints: last.ckpt holds the whole training state (written by time, at the end and inside an
epoch), best-*.ckpt the weights of the lowest validation loss; a failed write leaves the previous
file loadable; writes in the background keep the state at saving and their order."""

from __future__ import annotations

import json
import threading

import pytest
import torch
from helpers import CHEAP_EVAL, compose_config
from lightning_fabric.plugins.io import torch_io

import vaelab
from vaelab.errors import ResumeError
from vaelab.files import atomic_write
from vaelab.model import VAE
from vaelab.training.checkpoints import AtomicCheckpointIO, BackgroundCheckpointIO

QUICK = ("figures.enabled=false", *CHEAP_EVAL)


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
            "eval.quality.enabled=false",
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
            "eval.quality.enabled=false",
            f"run_dir={tmp_path}",
        )
    )
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 6 and "optimizer_states" in state  # 4 steps per epoch: stopped in the second


def test_background_checkpoints_hold_the_state_at_saving_and_keep_their_order(tmp_path, monkeypatch):
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
