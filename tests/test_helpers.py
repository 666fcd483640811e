"""The tests' own machinery: a command started beside the tests is killed with everything it started."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from helpers.commands import Started

SPAWNER = """
import subprocess, sys, time
child = subprocess.Popen(["sleep", "60"])
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(60)
"""


def alive(pid: int) -> bool:
    """Running, not a zombie awaiting its parent."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_killing_a_started_command_ends_the_processes_it_started(tmp_path):
    pid_file = tmp_path / "child.pid"
    started = Started([sys.executable, "-c", SPAWNER, str(pid_file)], tmp_path / "out")
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and started.running(), started.stderr.read_text()
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert alive(child)
    started.kill()  # as stop_all() does for every started command at the end of a test run
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)
    assert not started.running()
