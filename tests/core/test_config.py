"""Bad config values: one clear line naming the key, the value and what is allowed, before any work
and with nothing written; every shipped config passes the same checks."""

from __future__ import annotations

import re

import pytest
import torch
from helpers import CONF, PRIORS, compose_config
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

import vaelab
import vaelab.data
from vaelab.config import check_config
from vaelab.errors import ConfigError
from vaelab.overrides import check_overrides

# (overrides, "<key>=<value>" the message starts with, what it says is allowed)
BAD = [
    # top level
    ("latent_dim=0", "latent_dim=0", "positive integer"),
    ("latent_dim=-3", "latent_dim=-3", "positive integer"),
    ("latent_dim=abc", "latent_dim='abc'", "positive integer"),
    ("latent_dim=2.5", "latent_dim=2.5", "positive integer"),
    ("latent_dim=null", "latent_dim=null", "positive integer"),
    ("latent_dim=${nope}", "latent_dim='${nope}'", "cannot be resolved"),
    ("seed=-3", "seed=-3", "integer from 0 to 4294967295"),
    ("seed=4294967296", "seed=4294967296", "integer from 0 to 4294967295"),
    ("seed=abc", "seed='abc'", "integer from 0 to 4294967295"),
    ("batch_size=0", "batch_size=0", "positive integer"),
    ("batch_size=abc", "batch_size='abc'", "positive integer"),
    ("kl_warmup_epochs=-1", "kl_warmup_epochs=-1", "integer >= 0"),
    ("kl_warmup_epochs=1.5", "kl_warmup_epochs=1.5", "integer >= 0"),
    # optimizer
    ("optimizer.lr=0", "optimizer.lr=0", "positive number"),
    ("optimizer.lr=-1e-3", "optimizer.lr=-0.001", "positive number"),
    ("optimizer.lr=abc", "optimizer.lr='abc'", "positive number"),
    ("optimizer.lr=inf", "optimizer.lr=inf", "positive number"),
    ("optimizer._target_=torch.optim.Adamx", "optimizer._target_='torch.optim.Adamx'", "importable class"),
    ("optimizer._target_=torch.nn.ReLU", "optimizer._target_='torch.nn.ReLU'", "torch.optim.Optimizer"),
    ("+optimizer.fused=true", "optimizer.fused=true", "torch.optim.Adamax has no argument fused"),
    ("+optimizer.betas=[1.5,0.9]", "optimizer={'lr': 0.001, 'betas': [1.5, 0.9]}", "Invalid beta parameter"),
    ("optimizer._target_=torch.optim.SGD +optimizer.momentum=-1", "optimizer={'lr': 0.001, 'momentum': -1}",
     "torch.optim.SGD rejects it: Invalid momentum"),
    # encoder, decoder
    ("encoder.hidden=0", "encoder.hidden=0", "positive integer"),
    ("encoder.num_layers=-1", "encoder.num_layers=-1", "positive integer"),
    ("decoder.hidden=-1", "decoder.hidden=-1", "positive integer"),
    ("encoder.activation=relu", "encoder.activation='relu'", "leaky_relu, gated"),
    ("decoder.activation=tanh", "decoder.activation='tanh'", "leaky_relu, gated"),
    ("encoder.logvar_min=3 encoder.logvar_max=-3", "encoder.logvar_min=3", "< encoder.logvar_max (-3)"),
    ("encoder.logvar_min=2 encoder.logvar_max=2", "encoder.logvar_min=2", "< encoder.logvar_max (2)"),
    ("encoder.logvar_max=abc", "encoder.logvar_max='abc'", "null or a finite number"),
    ("encoder.input_scale=0", "encoder.input_scale=0", "positive number"),
    ("encoder.latent_dim=3", "encoder.latent_dim=3", "must equal latent_dim (2)"),
    ("decoder.output_dim=10", "decoder.output_dim=10", "must equal dataset.input_dim (64)"),
    ("decoder.likelihood=gaussian", "decoder.likelihood='gaussian'", "categorical, bernoulli, discretized_logistic"),
    ("decoder.likelihood=bernoulli", "decoder.likelihood='bernoulli'", "bernoulli needs data in 0..1"),
    ("dataset.likelihood=discretized_logistic dataset.num_levels=20", "decoder.num_levels=20", "must be 17 for data with values 0..16"),
    ("decoder.num_levels=1", "decoder.num_levels=1", "integer >= 2"),
    ("decoder.num_levels=5", "decoder.num_levels=5", ">= 17 for data with values 0..16"),
    ("+encoder.dropout=0.1", "encoder.dropout=0.1", "vaelab.nets.MLPEncoder has no argument dropout"),
    # priors
    ("prior=mog prior.num_components=0", "prior.num_components=0", "positive integer"),
    ("prior=mog prior.init_scale=-1", "prior.init_scale=-1", "positive number"),
    ("prior=vamp prior.num_components=-2", "prior.num_components=-2", "positive integer"),
    ("prior=vamp prior.init=zeros", "prior.init='zeros'", "random, data"),
    ("prior=vamp prior.init=null", "prior.init=null", "random, data"),
    ("prior=vamp prior.init=data prior.num_components=5000", "prior.num_components=5000", "at most 1000 with prior.init=data"),
    ("prior=vamp prior.init_std=0", "prior.init_std=0", "positive number"),
    ("prior=vamp prior.init_mean=nan", "prior.init_mean=nan", "finite number"),
    ("prior=vamp prior.input_min=16 prior.input_max=0", "prior.input_min=16", "< prior.input_max (0)"),
    ("prior=vamp prior.learnable_weights=maybe", "prior.learnable_weights='maybe'", "true or false"),
    ("prior=vamp prior.input_dim=10", "prior.input_dim=10", "must equal dataset.input_dim (64)"),
    ("prior=gtm prior.grid_side=0", "prior.grid_side=0", "positive integer"),
    ("prior=gtm prior.grid_range=0", "prior.grid_range=0", "positive number"),
    ("prior=gtm_vamp prior.hidden=0", "prior.hidden=0", "positive integer"),
    ("prior=gtm_vamp prior.grid_side=abc", "prior.grid_side='abc'", "positive integer"),
    ("prior=flow prior.num_layers=0", "prior.num_layers=0", "positive integer"),
    ("prior=flow prior.hidden=0", "prior.hidden=0", "positive integer"),
    ("prior=flow latent_dim=1", "latent_dim=1", "latent_dim >= 2"),
    ("prior=mog +prior.num_compnents=3", "prior.num_compnents=3", "MoGPrior has no argument num_compnents"),
    ("prior.latent_dim=3", "prior.latent_dim=3", "must equal latent_dim (2)"),
    # dataset
    ("dataset.input_min=20", "dataset.input_min=20", "< dataset.input_max (16)"),
    ("dataset.image_shape=[8,9]", "dataset.image_shape=[8, 9]", "dataset.input_dim (64) pixels"),
    ("dataset.datamodule.batch_size=0", "dataset.datamodule.batch_size=0", "positive integer"),
    ("+dataset.datamodule.eval_batch_size=0", "dataset.datamodule.eval_batch_size=0", "positive integer"),
    ("dataset=binarized_mnist dataset.datamodule.limit=0", "dataset.datamodule.limit=0", "positive integer"),
    ("dataset=binarized_mnist dataset.datamodule.limit=10 prior=vamp prior.init=data", "prior.num_components=16",
     "at most 10 with prior.init=data"),
    ("dataset=binarized_mnist dataset.root=/nonexistent/vaelab", "dataset.root='/nonexistent/vaelab'", "no such folder"),
    ("dataset=mnist dataset.root=/nonexistent/vaelab", "dataset.root='/nonexistent/vaelab'", "the MNIST files"),
    ("dataset=fashion_mnist dataset.binarize=maybe", "dataset.binarize='maybe'", "true or false"),
    ("dataset=frey_faces dataset.split_seed=-1", "dataset.split_seed=-1", "integer from 0 to 4294967295"),
    ("dataset=frey_faces dataset.num_levels=17", "decoder.num_levels=17", "must be 256 for data with values 0..255"),
    ("dataset.likelihood=continuous_bernoulli", "decoder.likelihood='continuous_bernoulli'", "needs data in [0, 1]"),
    ("dataset=images dataset.root=/x dataset.val_fraction=0", "dataset.val_fraction=0", "fraction between 0 and 1"),
    ("dataset=arrays dataset.path=/x.npz dataset.test_fraction=1.5", "dataset.test_fraction=1.5", "fraction between 0 and 1"),
    ("dataset=mnist dataset.binarize=false dataset.input_max=1", "dataset.binarize=false", "leave dataset.input_max at 255"),
    # early stopping, evaluation, figures
    ("early_stopping.monitor=val/elbo", "early_stopping.monitor='val/elbo'", "val/loss"),
    ("early_stopping.patience=0", "early_stopping.patience=0", "positive integer"),
    ("+early_stopping.mode=max", "early_stopping.mode='max'", "early_stopping has the keys monitor, patience"),
    ("eval.num_samples=0", "eval.num_samples=0", "positive integer"),
    ("eval.chunk_size=-5", "eval.chunk_size=-5", "positive integer"),
    ("eval.num_latent_samples=abc", "eval.num_latent_samples='abc'", "positive integer"),
    ("+eval.num_sampels=10", "eval.num_sampels=10", "eval has the keys num_samples"),
    ("eval.quality.k=0", "eval.quality.k=0", "positive integer"),
    ("eval.quality.num_samples=-1", "eval.quality.num_samples=-1", "null (as many as the reference images)"),
    ("eval.quality.decode=median", "eval.quality.decode='median'", "mean, sample"),
    ("eval.quality.enabled=maybe", "eval.quality.enabled='maybe'", "true or false"),
    ("eval.quality.cache_dir=''", "eval.quality.cache_dir=''", "must be a folder"),
    ("eval.quality=false", "eval.quality=false", "must be a mapping"),
    ("+eval.quality.kk=3", "eval.quality.kk=3", "eval.quality has the keys enabled, k"),
    ("figures.enabled=maybe", "figures.enabled='maybe'", "true or false"),
    ("figures.every_n_epochs=0", "figures.every_n_epochs=0", "positive integer"),
    # trainer
    ("trainer.max_epochs=-5", "trainer.max_epochs=-5", "positive integer, or -1"),
    ("trainer.max_epochs=abc", "trainer.max_epochs='abc'", "positive integer, or -1"),
    ("+trainer.min_epochs=10", "trainer.min_epochs=10", "<= trainer.max_epochs (3)"),
    ("+trainer.min_epochs=-1", "trainer.min_epochs=-1", "integer >= 0"),
    ("trainer.devices=0", "trainer.devices=0", "positive integer, -1 (all)"),
    ("trainer.devices=abc", "trainer.devices='abc'", "positive integer, -1 (all)"),
    ("trainer.devices=-1", "trainer.devices=-1", "on a CPU: a positive number of processes"),
    ("trainer.devices=[0,1]", "trainer.devices=[0, 1]", "on a CPU: a positive number of processes"),
    ("trainer.accelerator=tpu", "trainer.accelerator='tpu'", "cpu, gpu, cuda, mps, auto"),
    ("+trainer.precision=8", "trainer.precision=8", "choose one of 32-true"),
    ("+trainer.precision=16-mixed", "trainer.precision='16-mixed'", "16-mixed needs a GPU"),
    ("trainer.log_every_n_steps=0", "trainer.log_every_n_steps=0", "positive integer"),
    ("trainer.limit_train_batches=-1", "trainer.limit_train_batches=-1", "fraction in [0, 1]"),
    ("trainer.limit_val_batches=1.5", "trainer.limit_val_batches=1.5", "fraction in [0, 1]"),
    ("trainer.limit_test_batches=abc", "trainer.limit_test_batches='abc'", "fraction in [0, 1]"),
    ("+trainer.gradient_clip_val=-1", "trainer.gradient_clip_val=-1", "number >= 0"),
    ("+trainer.gradient_clip_algorithm=max", "trainer.gradient_clip_algorithm='max'", "norm, value"),
    ("+trainer.check_val_every_n_epoch=0", "trainer.check_val_every_n_epoch=0", "positive integer"),
    ("+trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches=0", "positive integer"),
    ("trainer.deterministic=maybe", "trainer.deterministic='maybe'", "true, false, warn"),
    ("trainer.enable_progress_bar=maybe", "trainer.enable_progress_bar='maybe'", "true or false"),
    ("eval.exact_grid=15", "eval.exact_grid=15", "even positive integer"),
    ("eval.exact_prior_grid=0", "eval.exact_prior_grid=0", "even positive integer"),
    ("eval.exact_width=0", "eval.exact_width=0", "positive number"),
    ("eval.exact=sometimes", "eval.exact='sometimes'", "auto, true, false"),
    ("eval.exact=true latent_dim=3", "eval.exact=true", "at most 2 latent dimensions in all"),
    ("model=hvae eval.exact=true", "eval.exact=true", "with latent_dim=2 + model.bottom_dim=2: the quadrature"),
    ("model=hvae model.hidden=0", "model.hidden=0", "positive integer"),
    ("model=hvae model.activation=tanh", "model.activation='tanh'", "leaky_relu, gated"),
    ("model=hvae +model.hiden=3", "model.hiden=3", "model has the keys name, bottom_dim"),
    ("model.name=hvae3", "model.name='hvae3'", "choose one of vae, hvae"),
    ("prior=gtm prior.num_layers=0", "prior.num_layers=0", "positive integer"),
    ("trainer.max_time=90min", "trainer.max_time='90min'", "DD:HH:MM:SS"),
    ("trainer.max_time=00:01:75:00", "trainer.max_time='00:01:75:00'", "DD:HH:MM:SS"),
    ("+trainer.strategy=ddp_magic", "trainer.strategy='ddp_magic'", "Lightning's strategies"),
    ("+trainer.enable_checkpointing=false", "trainer.enable_checkpointing=false", "must be true"),
    ("+trainer.logger=false", "trainer.logger=false", "vaelab sets it itself"),
    ("+trainer.max_epoch=5", "trainer.max_epoch=5", "pytorch_lightning.Trainer has no argument max_epoch"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "names", "allowed"), BAD, ids=[b[0] for b in BAD])
def test_bad_value_is_rejected_before_any_work(make_cfg, tmp_path, overrides, names, allowed):
    cfg = make_cfg(*overrides.split())
    with pytest.raises(ConfigError) as error:
        vaelab.run(cfg)
    message = str(error.value)
    assert message.startswith(f"{names} is not allowed: ") and allowed in message, message
    assert "\n" not in message
    assert not (tmp_path / "run").exists(), "nothing may be written before the config is checked"


# The one line `python train.py <overrides>` prints for these: "error: " and the message. Its path is
# the same for every bad value (vaelab.cli.train.task); tests/end_to_end/test_train_command_line.py
# runs the real command line for one of them.
COMMAND_LINE = [
    ("seed=-3", "error: seed=-3 is not allowed: must be an integer from 0 to 4294967295 (numpy's seed range)"),
    ("trainer.max_epochs=-5", "error: trainer.max_epochs=-5 is not allowed: must be a positive integer, or -1 for no limit"),
    ("encoder.logvar_min=3 encoder.logvar_max=-3",
     "error: encoder.logvar_min=3 is not allowed: must be < encoder.logvar_max (-3)"),
    ("prior=vamp prior.init=data prior.num_components=5000", "error: prior.num_components=5000 is not allowed: at most "
     "1000 with prior.init=data (the training split has 1000 examples to copy); or prior.init=random"),
    ("latent_dim=abc", "error: latent_dim='abc' is not allowed: must be a positive integer"),
    ("figures.enabled=maybe", "error: figures.enabled='maybe' is not allowed: must be true or false"),
    ("+optimizer.fused=true", "error: optimizer.fused=true is not allowed: torch.optim.Adamax has no argument fused "
     "(it takes lr, betas, eps, weight_decay, foreach, maximize, differentiable, capturable)"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "line"), COMMAND_LINE, ids=[c[0] for c in COMMAND_LINE])
def test_the_command_line_says_what_is_wrong_in_one_line_and_writes_nothing(tmp_path, overrides, line):
    check_overrides(overrides.split(), CONF)  # the command line's first check, of the keys: passed
    with pytest.raises(ConfigError) as error:
        vaelab.run(compose_config(*overrides.split(), f"run_dir={tmp_path / 'run'}"))
    assert f"error: {error.value}" == line
    assert not (tmp_path / "run").exists()


GOOD = [
    "",
    *[f"prior={p}" for p in PRIORS],
    "trainer=fast",
    "trainer=ddp_cpu",
    "prior=vamp prior.init=data",
    "prior=vamp prior.init=data prior.num_components=1000",
    "dataset=mnist",
    "dataset=fashion_mnist",
    "dataset=mnist dataset.binarize=false",
    "dataset=fashion_mnist dataset.binarize=false",
    "dataset=mnist dataset.binarize=false decoder.likelihood=categorical",
    "dataset.likelihood=discretized_logistic",
    "model=hvae",
    "model=hvae prior=vamp encoder=conv decoder=conv",
    "model=hvae latent_dim=1 model.bottom_dim=1 eval.exact=true",
    "experiment=vampprior_paper model=hvae prior=maf",
    *[f"experiment=hvae_paper prior={p}" for p in PRIORS],
    "experiment=convhvae_paper prior=vamp",
    "experiment=vampprior_paper encoder=conv decoder=conv",
    "dataset=frey_faces",
    "dataset=frey_faces dataset.split_seed=7",
    "dataset=caltech101_silhouettes",
    "seed=0",
    "seed=4294967295",
    "trainer.max_epochs=-1",
    "encoder.logvar_min=-6 encoder.logvar_max=2",
    "+trainer.precision=bf16-mixed",
    "+trainer.gradient_clip_val=1.5",
    "trainer.devices=auto",
    "trainer.max_time=00:01:30:00",
    "optimizer._target_=torch.optim.SGD +optimizer.momentum=0.9",
    *[f"experiment=vampprior_paper prior={p}" for p in PRIORS],
    "experiment=vampprior_paper prior=vamp prior.init=data",
    "experiment=vampprior_paper dataset=mnist",
    "experiment=vampprior_paper dataset=frey_faces",
    "experiment=vampprior_paper dataset=caltech101_silhouettes prior=vamp prior.init=data",
    "experiment=vampprior_paper dataset=fashion_mnist prior=maf",
]


@pytest.mark.parametrize("overrides", GOOD, ids=[g or "defaults" for g in GOOD])
def test_every_shipped_config_passes_the_checks(overrides):
    check_config(compose_config("run_dir=unused", *overrides.split()), files=False)


def test_a_gpu_trainer_without_a_gpu_is_one_line(make_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for overrides in (["trainer=gpu"], ["trainer=ddp"], ["trainer.accelerator=cuda"]):
        with pytest.raises(
            ConfigError, match=r"^trainer\.accelerator='(gpu|cuda)' is not allowed: this machine has no CUDA GPU"
        ) as error:
            vaelab.run(make_cfg(*overrides))
        if overrides == ["trainer=gpu"]:  # what `python train.py trainer=gpu` prints, in one line
            assert f"error: {error.value}" == (
                "error: trainer.accelerator='gpu' is not allowed: this machine has no CUDA GPU "
                "(torch.cuda.is_available() is false); use trainer=cpu"
            )
    assert not (tmp_path / "run").exists()


def test_more_gpus_than_the_machine_has_is_one_line(make_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_config(make_cfg("trainer=gpu", "trainer.devices=2"))  # as many as there are: fine
    check_config(make_cfg("trainer=ddp"))  # -1: all of them
    for devices, shown in (("4", "4"), ("[0,2]", "[0, 2]")):
        with pytest.raises(
            ConfigError, match=rf"^trainer\.devices={re.escape(shown)} is not allowed: this machine has 2 CUDA GPU"
        ):
            vaelab.run(make_cfg("trainer=gpu", f"trainer.devices={devices}"))
    assert not (tmp_path / "run").exists()


def test_too_many_data_initialised_components_are_found_without_reading_the_data(make_cfg, tmp_path, monkeypatch):
    def no_reading(self):
        raise AssertionError("the data were read before the config was checked")

    monkeypatch.setattr(vaelab.data.DigitsDataModule, "load", no_reading)
    with pytest.raises(
        ConfigError, match=r"^prior\.num_components=1001 is not allowed: at most 1000 with prior\.init=data"
    ):
        vaelab.run(make_cfg("prior=vamp", "prior.init=data", "prior.num_components=1001"))
    assert not (tmp_path / "run").exists()


def test_a_missing_data_file_is_found_before_any_work(make_cfg, tmp_path):
    root = tmp_path / "mnist"
    root.mkdir()
    for suffix in ("train", "valid"):  # the test split is missing
        (root / f"binarized_mnist_{suffix}.amat").write_text("0 1\n")
    cfg = make_cfg("dataset=binarized_mnist", f"dataset.root={root}")
    with pytest.raises(ConfigError, match=r"binarized_mnist_test\.amat: file not found"):
        vaelab.run(cfg)
    assert not (tmp_path / "run").exists()


SAME_AS_COMPOSE = [
    "",
    "prior=vamp trainer=fast",
    "experiment=vampprior_paper prior=maf",
    "prior=vamp prior.init=data prior.num_components=5 trainer=fast",
    "dataset=mnist experiment=vampprior_paper dataset.binarize=false",
    "dataset.likelihood=discretized_logistic dataset.num_levels=17 latent_dim=3",
    "+optimizer.betas=[0.5,0.9] ~early_stopping +trainer.gradient_clip_val=1.5 seed=7",
    "prior=mog latent_dim=${batch_size}",
]


@pytest.mark.parametrize("overrides", SAME_AS_COMPOSE)
def test_the_tests_compose_the_config_the_command_line_composes(overrides):
    """compose_config leaves out Hydra's logging and help configs, which compose drops anyway, and
    composes each choice of groups once."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        full = compose("train", overrides=overrides.split())
    for _ in range(2):  # the first composes the groups, the second reuses them
        cfg = compose_config(*overrides.split())
        assert cfg == full and OmegaConf.is_struct(cfg)
        cfg.seed = 12345  # a test may change its config: the next one does not see it


@pytest.mark.parametrize("overrides", ["latent_dmi=3", "+seed=1", "~nothing", "prior.nope=1"])
def test_the_tests_compose_rejects_what_compose_rejects(overrides):
    with (
        initialize_config_dir(config_dir=str(CONF), version_base="1.3"),
        pytest.raises(ConfigCompositionException) as expected,
    ):
        compose("train", overrides=[overrides])
    with pytest.raises(ConfigCompositionException) as error:
        compose_config(overrides)
    assert str(error.value) == str(expected.value)
