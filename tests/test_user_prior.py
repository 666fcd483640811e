"""A prior written outside vaelab trains, is evaluated, drawn and reported like the built-in ones.

The module and its YAML go into a temporary directory, as in the README's "Write your own prior":
the module on PYTHONPATH, the YAML in a config directory given with --config-dir or
hydra.searchpath. Nothing in vaelab is changed.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT

STUDENT_T = '''
import torch
from torch import nn
from torch.distributions import Distribution, Independent, StudentT


class StudentTPrior(nn.Module):
    """p(z) = prod_l StudentT(z_l | df, loc_l, scale_l), loc and scale learned."""

    def __init__(self, latent_dim: int, df: float = 3.0):
        super().__init__()
        self.df = df
        self.loc = nn.Parameter(torch.zeros(latent_dim))
        self.log_scale = nn.Parameter(torch.zeros(latent_dim))

    def forward(self, encoder: nn.Module | None = None) -> Distribution:
        return Independent(StudentT(self.df, self.loc, self.log_scale.exp()), 1)
'''

STUDENT_T_YAML = """
_target_: my_priors.StudentTPrior
latent_dim: ${latent_dim}
df: 3.0
"""

TINY = ("trainer=fast", "eval.num_samples=10", "eval.num_latent_samples=1000", "eval.exact=false")


@pytest.fixture
def user_dir(tmp_path) -> Path:
    (tmp_path / "my_priors.py").write_text(textwrap.dedent(STUDENT_T))
    (tmp_path / "conf" / "prior").mkdir(parents=True)
    (tmp_path / "conf" / "prior" / "student_t.yaml").write_text(STUDENT_T_YAML)
    return tmp_path


def train(user_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """train.py run from the user's directory, with their module on the Python path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(user_dir), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=user_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_a_user_prior_trains_is_evaluated_and_drawn(user_dir):
    run_dir = user_dir / "run"
    result = train(
        user_dir, "--config-dir", str(user_dir / "conf"), "prior=student_t", *TINY, f"hydra.run.dir={run_dir}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "vaelab: prior=student_t" in result.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and math.isfinite(metrics["test/nll"]) and math.isfinite(metrics["test/kl"])
    assert len(metrics["latent_stats"]["prior_var"]) == 2  # StudentT's closed-form variance, df = 3
    for name in ("latent", "samples", "reconstructions"):
        assert (run_dir / f"{name}.png").stat().st_size > 1000, name
    assert "_target_: my_priors.StudentTPrior" in (run_dir / "config.yaml").read_text()


@pytest.mark.slow
def test_a_sweep_reports_a_user_prior_next_to_built_in_ones(user_dir):
    sweep_dir = user_dir / "sweep"
    result = train(
        user_dir,
        "-m",
        f"hydra.searchpath=[file://{user_dir / 'conf'}]",
        "prior=student_t,standard,vamp",
        *TINY,
        "figures.enabled=false",
        f"hydra.sweep.dir={sweep_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with (sweep_dir / "comparison.csv").open() as handle:
        rows = {row["prior"]: row for row in csv.DictReader(handle)}
    assert sorted(rows) == ["standard", "student_t", "vamp"]
    assert all(math.isfinite(float(row["test/nll_mean"])) for row in rows.values())
    assert "\n| student_t |" in (sweep_dir / "comparison.md").read_text()
