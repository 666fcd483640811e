"""A file that cannot be written while training (a full disk) ends the run with one line: the file,
the complete checkpoint that is kept, and the command that resumes from it; nothing written before
is lost, and the resume finishes the run."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import compose_config
from helpers.commands import Started
from lightning_fabric.plugins.io import torch_io

from vaelab.errors import WriteError
from vaelab.files import atomic_write, atomic_write_text
from vaelab.rundir import RunDir
from vaelab.training.fit import run

QUICK = (
    "trainer=fast",
    "checkpoint.last_every_seconds=0",
    "figures.enabled=false",
    "eval.quality.enabled=false",
    "eval.num_samples=10",
    "eval.num_latent_samples=100",
    "eval.exact=false",
    "logger=csv",
)


def disk_full_after(saves: int):
    """A stand-in for Lightning's checkpoint writer that writes `saves` files, then finds the disk full."""
    real, calls = torch_io._atomic_save, []

    def save(checkpoint, path):
        calls.append(path)
        if len(calls) > saves:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(checkpoint, path)

    return save


def test_a_failed_write_names_the_file_and_keeps_the_previous_version(tmp_path):
    path = tmp_path / "metrics.json"
    atomic_write_text(path, "old")
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("a file where a folder should be")
    with pytest.raises(WriteError, match=rf"^could not write {blocked}/metrics.json: \S"):
        atomic_write_text(blocked / "metrics.json", "new")

    def fail(tmp):
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(WriteError, match=rf"^could not write {path}: No space left on device$"):
        atomic_write(path, fail)
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "not_a_folder"]


def test_a_full_disk_while_training_says_what_is_kept_and_the_resume_finishes(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    monkeypatch.setattr(torch_io, "_atomic_save", disk_full_after(2))  # best-000.ckpt and last.ckpt of epoch 0
    with pytest.raises(WriteError) as failure:
        run(compose_config(*QUICK, f"run_dir={run_dir}"))
    monkeypatch.undo()
    last = RunDir(run_dir).last
    step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    message = str(failure.value)
    assert message.startswith(f"could not write {run_dir}/checkpoints/") and "No space left on device" in message
    assert message.endswith(
        f"the complete checkpoint {last} (epoch 0, step {step}) is kept; free space, then resume with: "
        f"vaelab-train resume={run_dir.resolve()}"
    )
    assert "\n" not in message and failure.value.errno == errno.ENOSPC
    metrics = run(compose_config(*QUICK, f"run_dir={run_dir}", f"resume={last}"))
    assert metrics["epochs"] == 3 and RunDir(run_dir).metrics.is_file()


def test_without_a_resumable_checkpoint_the_line_says_to_start_again(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    monkeypatch.setattr(torch_io, "_atomic_save", disk_full_after(0))
    with pytest.raises(WriteError, match=r"no checkpoint was written yet; free space, then start the run again in"):
        run(compose_config(*QUICK, f"run_dir={run_dir}"))


FULL_DISK = (  # `vaelab-train` with the third checkpoint write failing as on a full disk
    "import errno, sys\n"
    "from lightning_fabric.plugins.io import torch_io\n"
    "real, calls = torch_io._atomic_save, []\n"
    "def save(checkpoint, path):\n"
    "    calls.append(path)\n"
    "    if len(calls) > 2:\n"
    "        raise OSError(errno.ENOSPC, 'No space left on device')\n"
    "    real(checkpoint, path)\n"
    "torch_io._atomic_save = save\n"
    "from vaelab.cli.train import main\n"
    "main()\n"
)


def train_on_a_full_disk(folder: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """The command line on a disk that fills up during training (early work): its result and run directory."""
    run_dir = folder / "run"
    command = [sys.executable, "-c", FULL_DISK, *QUICK, f"hydra.run.dir={run_dir}"]
    return Started(command, folder / "output").result(timeout=300), run_dir


EARLY = (train_on_a_full_disk,)


@pytest.mark.slow
def test_the_command_line_prints_one_line_and_exits_non_zero(early):
    result, run_dir = early.result(train_on_a_full_disk)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: could not write {run_dir}/checkpoints/") and "No space left on device" in line
    assert line.endswith(f"vaelab-train resume={run_dir}")
