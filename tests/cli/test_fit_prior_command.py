"""vaelab-fit-prior: a run, a prior and overrides that cannot make a refit are one line naming what
is wrong (exit status 2), and nothing is written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from helpers import SHORT_RUN, compose_config

import vaelab
from vaelab.cli import fit_prior as fit_prior_command


@pytest.fixture(scope="module")
def plain_encoder_run(tmp_path_factory) -> Path:
    """A run whose encoder gives q(z|x) but not its Gaussian parameters."""
    run_dir = tmp_path_factory.mktemp("plain") / "run"
    vaelab.run(
        compose_config(*SHORT_RUN, f"run_dir={run_dir}", "encoder._target_=helpers.runs.DistributionOnlyEncoder")
    )
    return run_dir


def snapshot(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize("case, message", [
    ("not_a_run", "holds no vaelab run (no config.yaml)"),
    ("no_checkpoint", "holds no trained model (no checkpoints/best-*.ckpt)"),
    ("unknown_prior", "prior=foo is not allowed: choose one of energy, energy_ncp, exemplar, flow, gtm, gtm_vamp, lars"),
    ("bad_key", "prior.num_compnents=3 is not allowed: prior has no key num_compnents"),
    ("bad_value", "prior.num_components=0 is not allowed: must be a positive integer"),
    ("frozen_key", "encoder.hidden=8 is not allowed in a post-hoc fit"),
    ("nothing_to_fit", "prior=standard has no parameters to fit"),
    ("pseudo_input_range", "the run's encoder was trained on data in [0, 16]"),
    ("other_checkpoint", "the run's config.yaml and its checkpoint describe different encoders"),
    ("no_gaussian_params", "the run's encoder (DistributionOnlyEncoder) does not have"),
])  # fmt: skip
def test_bad_inputs_are_one_line_and_write_nothing(joint_run, plain_encoder_run, tmp_path, capsys, case, message):
    run = tmp_path / "run"
    shutil.copytree(
        plain_encoder_run if case == "no_gaussian_params" else joint_run, run, ignore=shutil.ignore_patterns("posthoc")
    )
    args = {
        "unknown_prior": ["prior=foo"],
        "bad_key": ["prior=mog", "prior.num_compnents=3"],
        "bad_value": ["prior=mog", "prior.num_components=0"],
        "frozen_key": ["prior=mog", "encoder.hidden=8"],
        "nothing_to_fit": ["prior=standard"],
        "pseudo_input_range": ["prior=vamp", "prior.input_max=255"],
        "no_gaussian_params": ["prior=vamp"],
    }.get(case, ["prior=mog"])
    if case == "not_a_run":
        (run / "config.yaml").unlink()
    if case == "no_checkpoint":
        shutil.rmtree(run / "checkpoints")
        (run / "metrics.json").unlink()
    if case == "other_checkpoint":
        config = yaml.safe_load((run / "config.yaml").read_text())
        config["encoder"]["hidden"] = 128
        (run / "config.yaml").write_text(yaml.safe_dump(config))
    before = snapshot(run)
    with pytest.raises(SystemExit) as stop:
        fit_prior_command.main([str(run), *args])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("vaelab-fit-prior: error: ") and message in err, err
    assert snapshot(run) == before
