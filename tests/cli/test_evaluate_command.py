"""vaelab-evaluate: a run's test metrics again, with overrides (of the prior's, those of its
estimator); a missing file, a corrupt checkpoint, a corrupt metrics.json or a bad override is one
line naming it."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from helpers.runs import corrupt, save_untrained_run

from vaelab.model import VAE


def load_script():
    import vaelab.cli.evaluate

    return vaelab.cli.evaluate


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty", "not_a_vae"])
def test_evaluate_names_a_corrupt_checkpoint_in_one_line(saved_run, capsys, how):
    run_dir, ckpt = saved_run
    script = load_script()
    assert isinstance(script.load_model(ckpt), VAE)  # the intact file loads
    corrupt(ckpt, how)
    with pytest.raises(SystemExit) as exit_:
        script.main([str(ckpt), "--json", str(run_dir / "out.json")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith(f"vaelab-evaluate: error: {ckpt}: not a readable vaelab checkpoint") and err.count("\n") == 1
    assert not (run_dir / "out.json").exists()


@pytest.mark.parametrize(("override", "message"), [
    ("eval.num_samples=0", "eval.num_samples=0 is not allowed: must be a positive integer"),
    ("seed=-1", "seed=-1 is not allowed: must be an integer from 0 to 4294967295 (numpy's seed range)"),
    ("eval.chunk_size=abc", "eval.chunk_size='abc' is not allowed: must be a positive integer"),
])  # fmt: skip
def test_evaluate_checks_its_overrides(saved_run, capsys, override, message):
    run_dir, ckpt = saved_run
    with pytest.raises(SystemExit) as exit_:
        load_script().main([str(ckpt), override])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err == f"vaelab-evaluate: error: {message}\n"


def test_evaluate_sets_how_the_prior_is_estimated_and_refuses_what_the_checkpoint_fixes(tmp_path, capsys):
    run_dir = tmp_path / "run"
    ckpt = save_untrained_run(run_dir, "prior=latent_vae", "eval.quality.enabled=false", "eval.exact=false")
    out = tmp_path / "out.json"
    load_script().main([str(ckpt), "eval.num_samples=2", "prior.eval_samples=3", "--json", str(out)])
    assert "importance sampling over K = 3 samples of q(u|z)" in json.loads(out.read_text())["prior/log_prob_estimator"]
    for override, message in [
        ("prior.hidden=8", "prior.hidden=8 is not allowed: the checkpoint fixes the prior; at evaluation only "
         "prior.eval_samples, prior.resample_from (how its density is estimated or sampled) can change"),
        ("prior.resample_from=5", "prior.resample_from=5 is not allowed: prior.resample_from is not in"),
        ("+prior.resample_from=5", "prior.resample_from=5 is not allowed: vaelab.priors.LatentVAEPrior has no argument"),
    ]:  # fmt: skip
        with pytest.raises(SystemExit) as exit_:
            load_script().main([str(ckpt), "eval.num_samples=2", override, "--json", str(tmp_path / "refused.json")])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.startswith(f"vaelab-evaluate: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "refused.json").exists()


def test_evaluate_names_a_corrupt_metrics_file(saved_run, capsys):
    run_dir, _ = saved_run
    (run_dir / "metrics.json").write_text('{"best_checkpoint": "checkpoints/la')
    with pytest.raises(SystemExit):
        load_script().main([str(run_dir)])
    assert capsys.readouterr().err.startswith(f"vaelab-evaluate: error: {run_dir / 'metrics.json'}: not readable")


def test_evaluate_a_gpu_run_on_a_cpu_machine_is_not_refused(saved_run, monkeypatch):
    run_dir, ckpt = saved_run
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    text = (run_dir / "config.yaml").read_text().replace("accelerator: cpu", "accelerator: gpu")
    (run_dir / "config.yaml").write_text(text)
    cfg = load_script().load_config(run_dir, ["eval.num_samples=2"])
    assert cfg.trainer.accelerator == "gpu"


@pytest.mark.parametrize(
    "path, message",
    [
        ("missing", "missing: no such run directory or checkpoint"),
        ("checkpoints", "checkpoints holds no vaelab run (no config.yaml)"),  # a directory that is not a run
        ("checkpoints/last.ckpt", "run holds no vaelab run (no config.yaml)"),  # config.yaml removed below
    ],
)
def test_script_names_the_missing_file(digits_run, tmp_path, capsys, path, message):
    run_dir = tmp_path / "run"
    shutil.copytree(digits_run[0], run_dir)
    (run_dir / "config.yaml").unlink()
    with pytest.raises(SystemExit):
        load_script().main([str(run_dir / path)])
    assert message in capsys.readouterr().err


def test_script_rejects_an_unknown_override(digits_run, capsys):
    with pytest.raises(SystemExit):
        load_script().main([str(digits_run[0]), "eval.num_sampels=10"])
    assert "eval.num_sampels is not in" in capsys.readouterr().err
