"""Post-hoc priors: a new prior fitted to a trained run with the encoder and decoder frozen
(`vaelab.posthoc`, `vaelab-fit-prior`, `posthoc=` after training and in sweeps)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT, compose_config
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

import vaelab
from vaelab import VAE
from vaelab.errors import ConfigError
from vaelab.evaluation.runner import evaluate_test_set
from vaelab.nets import MLPEncoder
from vaelab.overrides import posthoc_argv
from vaelab.posthoc.fit import fit
from vaelab.posthoc.jobs import requested

QUICK = ("figures.enabled=false", "eval.num_samples=10", "eval.num_latent_samples=1000", "eval.exact=false")


def load_script(name: str):
    return importlib.import_module(f"vaelab.cli.{name}")


@pytest.fixture(scope="module")
def joint_run(tmp_path_factory) -> Path:
    """A standard-prior run trained until both latent units are active and q(z) is no longer close
    to N(0, I): 25 full epochs at lr 1e-2 (at the default 1e-3 the posterior has not yet left the
    prior by then, the standard prior is all but optimal, and a refit has nothing to gain)."""
    run_dir = tmp_path_factory.mktemp("joint") / "run"
    cfg = compose_config(
        "prior=standard",
        f"run_dir={run_dir}",
        "trainer.max_epochs=25",
        "optimizer.lr=1e-2",
        "trainer.enable_progress_bar=false",
        "seed=0",
        *QUICK,
    )
    vaelab.run(cfg)
    return run_dir


@pytest.fixture(scope="module")
def mog_fit(joint_run) -> dict:
    return fit(joint_run, "mog", ["trainer.max_epochs=40"])


def test_a_mixture_fitted_post_hoc_keeps_the_elbo_and_lowers_the_marginal_kl(mog_fit):
    before, after = mog_fit["before"], mog_fit["after"]
    assert mog_fit["before_from"] == "the run's metrics.json"
    # Same encoder, same evaluation seed: the same z ~ q(z|x), so only the prior's terms can move.
    assert after["test/rec"] == before["test/rec"]
    assert after["test/entropy"] == before["test/entropy"]
    assert after["test/elbo"] >= before["test/elbo"] - 0.05
    assert after["test/marginal_kl"] < before["test/marginal_kl"]
    assert after["test/elbo"] - before["test/elbo"] == pytest.approx(before["test/kl"] - after["test/kl"], abs=1e-9)


def test_only_the_prior_changes_and_the_checkpoint_describes_the_new_prior(joint_run, mog_fit):
    out = Path(mog_fit["out"])
    assert out == joint_run / "posthoc" / "mog"
    metrics = json.loads((out / "metrics.json").read_text())
    source = torch.load(mog_fit["source_checkpoint"], map_location="cpu", weights_only=False)
    refit = torch.load(out / metrics["best_checkpoint"], map_location="cpu", weights_only=False)
    frozen = [key for key in source["state_dict"] if key.startswith(("encoder.", "decoder."))]
    assert frozen and all(torch.equal(source["state_dict"][k], refit["state_dict"][k]) for k in frozen)
    assert all(key.startswith("prior.") for key in refit["state_dict"] if key not in frozen)
    assert refit["hyper_parameters"]["prior"]["_target_"] == "vaelab.priors.MoGPrior"
    assert refit["hyper_parameters"]["kl_warmup_epochs"] == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["prior"]["_target_"] == "vaelab.priors.MoGPrior"
    assert "vaelab posthoc: standard → mog" in (out / "train.log").read_text()


def test_the_refit_checkpoint_round_trips_and_evaluates(mog_fit, capsys):
    out = Path(mog_fit["out"])
    metrics = json.loads((out / "metrics.json").read_text())
    model = VAE.load_from_checkpoint(out / metrics["best_checkpoint"], map_location="cpu")
    cfg = OmegaConf.load(out / "config.yaml")
    again = evaluate_test_set(model, instantiate(cfg.dataset.datamodule), cfg)
    assert again["test/elbo"] == metrics["test/elbo"] and again["test/nll"] == metrics["test/nll"]
    results = load_script("evaluate").main([str(out)])  # the run directory of a refit is a run directory
    assert results["test/elbo"] == metrics["test/elbo"]


def snapshot(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


class DistributionOnlyEncoder(nn.Module):
    """An encoder that gives q(z|x) but not its Gaussian parameters (as a flow posterior would):
    a VampPrior cannot put its pseudo-inputs through it."""

    def __init__(self, **kwargs):
        super().__init__()
        self.inner = MLPEncoder(**kwargs)
        self.input_dim, self.latent_dim = self.inner.input_dim, self.inner.latent_dim

    def forward(self, x):
        return self.inner(x)


@pytest.fixture(scope="module")
def plain_encoder_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("plain") / "run"
    vaelab.run(
        compose_config(
            "trainer=fast", f"run_dir={run_dir}", "encoder._target_=test_posthoc.DistributionOnlyEncoder", *QUICK
        )
    )
    return run_dir


@pytest.mark.parametrize("case, message", [
    ("not_a_run", "holds no vaelab run (no config.yaml)"),
    ("no_checkpoint", "holds no trained model (no checkpoints/best-*.ckpt)"),
    ("unknown_prior", "prior=foo is not allowed: choose one of flow, gtm, gtm_vamp, lars, maf, mog"),
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
        load_script("fit_prior").main([str(run), *args])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("vaelab-fit-prior: error: ") and message in err, err
    assert snapshot(run) == before


def test_vamp_priors_fit_through_the_frozen_encoder(joint_run, tmp_path):
    record = fit(joint_run, "vamp_data", ["trainer.max_epochs=2", "prior.num_components=8"], out=tmp_path / "vd")
    model = VAE.load_from_checkpoint(next((tmp_path / "vd" / "checkpoints").glob("best-*.ckpt")), map_location="cpu")
    assert model.prior.pseudo_inputs().shape == (8, 64)  # training digits, kept fixed
    assert record["after"]["test/rec"] == record["before"]["test/rec"]


def test_posthoc_names_are_checked_before_training_and_a_comma_list_is_a_list():
    assert requested(compose_config("posthoc=[mog,flow]")) == ["mog", "flow"]
    assert requested(compose_config()) == []
    with pytest.raises(ConfigError, match="posthoc=foo is not allowed: choose prior options from flow, gtm"):
        requested(compose_config("posthoc=[mog,foo]"))
    assert posthoc_argv(["-m", "seed=0,1", "posthoc=mog,flow", "posthoc=[a,b]"]) == [
        "-m",
        "seed=0,1",
        "posthoc=[mog,flow]",
        "posthoc=[a,b]",
    ]


@pytest.mark.slow
def test_a_sweep_refits_each_job_reports_both_rows_and_does_not_refit_twice(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        "prior=standard",
        "seed=0,1",
        "posthoc=mog,vamp",
        "trainer=fast",
        *QUICK,
        f"hydra.sweep.dir={tmp_path}",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for seed in (0, 1):
        for prior in ("mog", "vamp"):
            record = json.loads(
                (tmp_path / f"{seed}_standard_seed{seed}" / "posthoc" / prior / "posthoc.json").read_text()
            )
            assert record["source_prior"] == "standard" and record["prior"] == prior
    report = (tmp_path / "comparison.md").read_text()
    assert "| standard | 2 |" in report and "| standard → mog (post-hoc) | 2 |" in report
    assert "| standard → vamp (post-hoc) | 2 |" in report and "## Post-hoc fits against their joint runs" in report
    done = (tmp_path / "0_standard_seed0" / "posthoc" / "mog" / "posthoc.json").stat().st_mtime_ns
    unfinished = tmp_path / "1_standard_seed1" / "posthoc" / "vamp"
    (unfinished / "posthoc.json").unlink()  # as if killed before the end: fitted again, the attempt kept
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / "0_standard_seed0" / "posthoc" / "mog" / "posthoc.json").stat().st_mtime_ns == done
    assert "fitted earlier: skipped" in (tmp_path / "0_standard_seed0" / "train.log").read_text()
    assert (unfinished / "posthoc.json").is_file() and (unfinished / "attempts" / "1" / "metrics.json").is_file()


def test_the_posthoc_key_does_not_split_the_joint_rows_of_a_report():
    """Joint runs from a sweep with `posthoc=` and one without belong to the same rows: the key
    names refits made afterwards, not a setting of the joint model."""
    from pathlib import Path

    from vaelab.reports.jobs import Job
    from vaelab.reports.table import group

    def job(num: int, prior: str, **overrides: str) -> Job:
        typed = {"prior": f"prior={prior}", "seed": "seed=0", **{k: f"{k}={v}" for k, v in overrides.items()}}
        return Job(Path(f"{num}_{prior}"), num, prior, 0, typed, "completed")

    jobs = [job(0, "standard", posthoc="[mog]"), job(1, "standard"), job(2, "mog"), job(3, "mog", latent_dim="4")]
    labels = sorted(row.label for row in group(jobs))
    assert labels == ["mog", "mog (latent_dim=4)", "standard"]
