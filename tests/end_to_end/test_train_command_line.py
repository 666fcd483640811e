"""vaelab-train on the real command line (`python train.py ...`): bad input is one line, a non-zero
exit status, no traceback and no run directory left behind (a bad value, a bad key, an unknown
option; what the line says for each bad value: tests/core/test_config.py); a prior of the user's own
trains, is evaluated and drawn; output to a pipe has one line per epoch, no progress bar, and
train.log has the same lines. The commands are started side by side, once, as the test run starts
(`run_commands`, early work)."""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers.commands import start_evaluate, start_train, with_python_path
from helpers.own_data import grey_images, write_images
from helpers.runs import EPOCH_LINE, epoch_lines
from helpers.user_prior import write_user_prior

pytestmark = pytest.mark.slow
# trainer=fast: 3 epochs of 4 batches; an evaluation that takes a fraction of a second.
TINY = ("trainer=fast", "eval.num_samples=10", "eval.num_latent_samples=200", "eval.exact=false")
BAD_VALUE = "prior=mog prior.num_components=0"
# Bad keys and options: found before Hydra runs the task, without the heavy imports.
CLI = [
    ("prior.num_compnents=3", "error: prior.num_compnents=3 is not allowed: prior has no key num_compnents (its keys: "
     "latent_dim); to add a new key, write +prior.num_compnents=3"),
]  # fmt: skip
UNKNOWN_PRIOR = "prior=foo"


def run_commands(root: Path) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Every command of this module, started at once and waited for: its name → (result, run
    directory). The user's prior runs from the user's directory, with their module on PYTHONPATH."""
    runs = {}
    bad = [BAD_VALUE, *(overrides for overrides, _ in CLI), UNKNOWN_PRIOR]
    for number, overrides in enumerate(bad):
        folder = root / str(number)
        runs[overrides] = folder, start_train(*overrides.split(), f"hydra.run.dir={folder / 'run'}", folder=folder)
    user_dir = write_user_prior(root / "user")
    images = write_images(user_dir / "images", grey_images(200, (8, 8)), [f"class_{i % 4}" for i in range(200)])
    runs["student_t"] = (
        user_dir,
        start_train(
            "--config-dir",
            str(user_dir / "conf"),
            "prior=student_t",
            "dataset=images",
            f"dataset.root={images.relative_to(user_dir)}",  # relative to where the command runs
            *TINY,
            f"hydra.run.dir={user_dir / 'run'}",
            folder=user_dir / "output",
            cwd=user_dir,
            env=with_python_path(user_dir),
        ),
    )
    arrays = root / "arrays"
    arrays.mkdir()
    rng = np.random.default_rng(0)
    np.savez(arrays / "data.npz", x=rng.uniform(size=(150, 7, 3)), y=rng.integers(0, 3, 150))
    run = start_train(
        "dataset=arrays", f"dataset.path={arrays / 'data.npz'}", *TINY, f"hydra.run.dir={arrays / 'run'}", folder=arrays
    )
    done = {name: (started.result(), folder / "run") for name, (folder, started) in runs.items()}
    done["arrays"] = run.result(), arrays / "run"
    if done["arrays"][0].returncode == 0:  # evaluated again, from the saved run: its test fails otherwise
        again = start_evaluate(str(arrays / "run"), "--json", str(arrays / "again.json"), folder=arrays / "again")
        done["arrays evaluated"] = again.result(), arrays / "run"
    return done


EARLY = (run_commands,)


@pytest.fixture(scope="module")
def commands(early) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    return early.result(run_commands)


def assert_one_line(result: subprocess.CompletedProcess, line: str) -> None:
    output = [text for text in (result.stdout + result.stderr).splitlines() if text.strip()]
    assert result.returncode != 0
    assert output == [line], output
    assert "Traceback" not in result.stderr


def test_command_line_reports_a_bad_value_in_one_line_and_fails(commands):
    result, run_dir = commands[BAD_VALUE]
    assert_one_line(result, "error: prior.num_components=0 is not allowed: must be a positive integer")
    assert not run_dir.exists(), "the run directory Hydra made is removed again"


@pytest.mark.parametrize(("overrides", "line"), CLI, ids=[c[0] for c in CLI])
def test_command_line_bad_input_is_one_line_and_leaves_no_run_directory(commands, overrides, line):
    result, run_dir = commands[overrides]
    assert_one_line(result, line)
    assert not run_dir.exists()


def test_unknown_prior_lists_the_available_ones(commands):
    result, run_dir = commands[UNKNOWN_PRIOR]
    assert_one_line(
        result,
        "error: prior=foo is not allowed: choose one of energy, energy_ncp, exemplar, flow, gtm, gtm_vamp, lars, latent_vae, maf, mog, nsf, standard, vamp, vamp_data",
    )
    assert not run_dir.exists()


def test_a_user_prior_trains_is_evaluated_and_drawn(commands):
    """A prior written outside vaelab, its YAML in a config directory given with --config-dir."""
    result, run_dir = commands["student_t"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "vaelab: prior=student_t" in result.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and math.isfinite(metrics["test/nll"]) and math.isfinite(metrics["test/kl"])
    assert len(metrics["latent_stats"]["prior_var"]) == 2  # StudentT's closed-form variance, df = 3
    for name in ("latent", "samples", "reconstructions"):
        assert (run_dir / f"{name}.png").stat().st_size > 1000, name
    assert "_target_: my_priors.StudentTPrior" in (run_dir / "config.yaml").read_text()


def test_own_images_with_a_user_prior_train_with_their_classes_as_labels(commands):
    """The user's prior above trained on the user's own folder of images, four class subfolders,
    named relative to the folder the command runs in."""
    result, run_dir = commands["student_t"]
    assert result.returncode == 0, result.stderr[-3000:]
    config = yaml.safe_load((run_dir / "config.yaml").read_text())["dataset"]
    assert config["root"] == str(run_dir.parent / "images")  # saved as an absolute path
    assert (config["input_dim"], config["image_shape"], config["likelihood"]) == (64, [8, 8], "discretized_logistic")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["eval"]["quality_num_reference"] == 20  # the labelled test images: the classifier had labels


def test_an_npz_file_trains_and_its_run_is_evaluated_again_to_the_same_numbers(commands):
    result, run_dir = commands["arrays"]
    assert result.returncode == 0, result.stderr[-3000:]
    config = yaml.safe_load((run_dir / "config.yaml").read_text())["dataset"]
    assert (config["input_dim"], config["image_shape"], config["likelihood"]) == (21, [7, 3], "continuous_bernoulli")
    again, _ = commands["arrays evaluated"]
    assert again.returncode == 0, again.stderr[-3000:]
    before = json.loads((run_dir / "metrics.json").read_text())
    after = json.loads((run_dir.parent / "again.json").read_text())
    assert after["test/nll"] == before["test/nll"] and after["test/kl"] == before["test/kl"]


def test_output_to_a_pipe_has_one_line_per_epoch_no_bar_and_train_log_has_the_same(commands):
    """The run of the user's prior above: its output goes to a file, not a terminal."""
    result, run_dir = commands["student_t"]
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "\r" not in out and "it/s" not in out and "Epoch 0:" not in out  # no progress bar
    assert epoch_lines(out) == [1, 2, 3]
    log = (run_dir / "train.log").read_text()
    assert epoch_lines(log) == [1, 2, 3]
    assert [line for line in out.splitlines() if EPOCH_LINE.search(line)] == [
        line for line in log.splitlines() if EPOCH_LINE.search(line)
    ]
    assert re.search(r"vaelab: prior=student_t .*test NLL=[\d.]+ \(S=10\) ELBO=-[\d.]+", out)
    assert "test NLL=" in log
