"""What a user sees in TensorBoard's HPARAMS tab, through a real server's HTTP API."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.slow
PLUMBING = ("_target_", "run_dir", "datamodule", "input_dim", "root")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_tensorboard_server_shows_the_prior_in_its_hparams_table(mog_run):
    """What a user sees in TensorBoard's HPARAMS tab, through the server's HTTP API."""
    run_dir, _ = mog_run
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(run_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/data/plugin/hparams/experiment",
            data=b"{}",
            headers={"Content-Type": "application/json"},
        )
        deadline, experiment = time.monotonic() + 90, None
        while experiment is None or not experiment.get("hparamInfos"):
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail(f"no HPARAMS from the TensorBoard server on port {port} (got {experiment})")
            time.sleep(1)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    experiment = json.loads(response.read())
            except OSError:
                continue
        names = {info["name"] for info in experiment["hparamInfos"]}
        assert {"prior", "dataset", "latent_dim", "seed", "prior.num_components"} <= names
        assert not [name for name in names if any(word in name for word in PLUMBING)], names
        assert {"hp/test_nll", "hp/test_elbo"} <= {info["name"]["tag"] for info in experiment["metricInfos"]}
    finally:
        server.terminate()
        server.wait(timeout=30)
