"""Experiment trackers (the `logger` group): each gets the train, validation and test metrics and
the hyperparameters that compare runs (the prior's name, not the plumbing); images where it can."""

from __future__ import annotations

import csv
import time

import pytest
import yaml
from helpers import CHEAP_EVAL, CONF, compose_config
from helpers.runs import events, tensorboard_hparams
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

import vaelab
from vaelab.training.trackers import option_name, run_hparams

QUICK = ("trainer=fast", *CHEAP_EVAL)
PLUMBING = ("_target_", "run_dir", "datamodule", "input_dim", "root")


def train(tmp_path, *overrides: str) -> dict:
    return vaelab.run(compose_config(*QUICK, f"run_dir={tmp_path}", *overrides))


def test_hparams_in_the_event_file_name_the_prior_and_leave_out_the_plumbing(mog_run):
    run_dir, metrics = mog_run
    hparams = tensorboard_hparams(run_dir)
    assert hparams["prior"] == "mog" and hparams["dataset"] == "digits"
    assert hparams["latent_dim"] == 2 and hparams["seed"] == 42
    assert hparams["prior.num_components"] == 4 and hparams["prior.init_scale"] == 1.0
    assert not [key for key in hparams if any(word in key for word in PLUMBING)], sorted(hparams)
    assert len(hparams) <= 10, sorted(hparams)
    assert events(run_dir).Scalars("hp/test_nll")[-1].value == pytest.approx(metrics["test/nll"], rel=1e-6)


def test_option_names_of_the_classes():
    names = {
        path: option_name(path, "Prior")
        for path in ("a.StandardPrior", "a.MoGPrior", "a.VampPrior", "a.GTMPrior", "a.GTMVampPrior", "a.FlowPrior")
    }
    assert list(names.values()) == ["standard", "mog", "vamp", "gtm", "gtm_vamp", "flow"]
    assert option_name("vaelab.data.BinarizedMNISTDataModule", "DataModule") == "binarized_mnist"


def test_hparams_of_a_sweep_job_hold_the_swept_keys_and_hydra_choices():
    overrides = ["prior=vamp", "seed=3", "optimizer.lr=0.01", "run_dir=/somewhere", "figures.enabled=false"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    try:
        params = run_hparams(cfg)
    finally:
        HydraConfig.instance().cfg = None
    assert params["prior"] == "vamp" and params["seed"] == 3 and params["optimizer.lr"] == 0.01
    assert params["figures.enabled"] is False and params["prior.num_components"] == 16
    assert "run_dir" not in params and not [key for key in params if "_target_" in key]


def test_csv_logger_writes_train_validation_and_test_metrics_and_the_hparams(tmp_path):
    train(tmp_path, "logger=csv", "figures.enabled=false")
    with (tmp_path / "csv" / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    filled = {key for row in rows for key, value in row.items() if value != ""}
    assert {
        "train/loss",
        "train/rec",
        "train/kl",
        "val/loss",
        "val/kl",
        "test/loss",
        "test/nll",
        "test/elbo",
        "hp/test_nll",
    } <= filled
    assert len([row for row in rows if row.get("val/loss")]) == 3  # one per epoch
    hparams = yaml.safe_load((tmp_path / "csv" / "hparams.yaml").read_text())
    assert hparams["prior"] == "standard" and "run_dir" not in hparams
    assert not (tmp_path / "tensorboard").exists()


def test_two_loggers_at_once(tmp_path):
    train(tmp_path, "logger=[tensorboard,csv]", "figures.enabled=false")
    assert (tmp_path / "csv" / "metrics.csv").is_file()
    assert tensorboard_hparams(tmp_path)["prior"] == "standard"


def test_mlflow_gets_params_metrics_and_images(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    train(tmp_path, "logger=mlflow", "figures.every_n_epochs=1")
    client = MlflowClient(tracking_uri=f"file:{tmp_path / 'mlruns'}")
    (run,) = client.search_runs([client.get_experiment_by_name("vaelab").experiment_id])
    assert run.data.params["prior"] == "standard" and "run_dir" not in run.data.params
    assert {"train/loss", "val/loss", "test/loss", "test/nll", "hp/test_nll"} <= set(run.data.metrics)
    images = [a.path for a in client.list_artifacts(run.info.run_id, "images/samples")]
    assert images, "no images logged"


def test_wandb_offline_gets_config_metrics_and_images(tmp_path):
    pytest.importorskip("wandb")
    train(tmp_path, "logger=wandb", "figures.every_n_epochs=1")
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    # The offline run is one binary record file (read by `wandb sync`); its keys are stored as text.
    (records,) = run_dir.glob("run-*.wandb")
    deadline = time.monotonic() + 60  # W&B's service process writes the file after the run has finished
    while b"hp/test_nll" not in (data := records.read_bytes()) and time.monotonic() < deadline:
        time.sleep(0.5)
    for key in (b"train/loss", b"val/loss", b"test/nll", b"hp/test_nll", b"latent_dim", b"prior"):
        assert key in data, key
    assert b"run_dir" not in data and b"_target_" not in data
    assert list((run_dir / "files" / "media" / "images").rglob("*.png"))


def test_a_run_logs_test_scalars_and_hparams_to_tensorboard(digits_run):
    accumulator = events(digits_run[0])
    assert {"test/nll", "test/mutual_info", "hp/test_nll", "hp/test_elbo", "hp/mutual_info", "hp/marginal_kl"} <= set(
        accumulator.Tags()["scalars"]
    )
    assert {"test/nll_exact", "test/nll_exact_error", "hp/test_nll_exact"} <= set(accumulator.Tags()["scalars"])
    assert "_hparams_/session_start_info" in accumulator.PluginTagToContent("hparams")
    assert accumulator.Scalars("test/nll")[-1].value == pytest.approx(digits_run[1]["test/nll"], rel=1e-6)
