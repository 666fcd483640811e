"""The real command lines, as a user types them, in child processes: run and waited for, or started
side by side (each child on one thread, so that several share the cores without stalling)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import weakref
from pathlib import Path

from helpers import ROOT

TRAIN = [sys.executable, str(ROOT / "train.py")]
EVALUATE = [sys.executable, "-m", "vaelab.cli.evaluate"]


def train(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python train.py *args`, waited for, its output captured."""
    return subprocess.run([*TRAIN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def with_python_path(folder: Path, env: dict | None = None) -> dict:
    """The environment with `folder` on PYTHONPATH, as a user's own module is."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join([str(folder), env.get("PYTHONPATH", "")])
    return env


def side_by_side(env: dict | None = None) -> dict:
    """The environment of a child that runs beside others: one thread for torch's operations."""
    return {**(os.environ if env is None else env), "OMP_NUM_THREADS": "1"}


# The niceness of a command started beside the tests: the tests in this process go first, the
# commands take the time the tests leave.
NICENESS = 10


class Started:
    """A command started and not waited for, its output going to two files in `folder`; on one torch
    thread and at a lower priority (NICENESS), as are the processes it starts. It leads a process
    group of its own, so that killing it reaches those processes too (a DDP run's second process)."""

    def __init__(self, args: list[str], folder: Path, cwd: Path = ROOT, env: dict | None = None, **popen):
        folder.mkdir(parents=True, exist_ok=True)
        self.args, self.stdout, self.stderr = args, folder / "stdout.txt", folder / "stderr.txt"
        popen.setdefault("start_new_session", True)
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.process = subprocess.Popen(
                args, cwd=cwd, env=side_by_side(env), stdout=out, stderr=err, text=True, **popen
            )
        os.setpriority(os.PRIO_PROCESS, self.process.pid, NICENESS)  # before it starts others
        _STARTED.add(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Kills the command and the processes it started: its process group."""
        with contextlib.suppress(ProcessLookupError):  # the group has ended
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def result(self, timeout: int = 600) -> subprocess.CompletedProcess:
        """Waits for the command: its exit status and output."""
        self.process.wait(timeout=timeout)
        return subprocess.CompletedProcess(
            self.args, self.process.returncode, self.stdout.read_text(), self.stderr.read_text()
        )


_STARTED: weakref.WeakSet[Started] = weakref.WeakSet()


def stop_all() -> None:
    """Kills every started command still running and the processes it started (at the end of a test
    run cut short)."""
    for started in list(_STARTED):
        started.kill()


def start_train(*args: str, folder: Path, cwd: Path = ROOT, env: dict | None = None, **popen) -> Started:
    """`python train.py *args` started beside others; its output in `folder`."""
    return Started([*TRAIN, *args], folder, cwd, env, **popen)


def start_evaluate(*args: str, folder: Path, env: dict | None = None) -> Started:
    """`python -m vaelab.cli.evaluate *args` (vaelab-evaluate) started beside others; its output in `folder`."""
    return Started([*EVALUATE, *args], folder, ROOT, env)
