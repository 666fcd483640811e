"""The experiment presets (`experiment=...`): the VampPrior paper's model on binarized MNIST, the
best prior found for it, and the six-prior comparison sweep."""

from __future__ import annotations

import hydra
import numpy as np
import pytest
from helpers import PRIORS, ROOT, SIX_PRIORS, compose_config
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import vaelab

REAL_ROOT = ROOT.parent / "shared" / "data" / "binarized_mnist"


def test_preset_sets_the_papers_model():
    cfg = compose_config("experiment=vampprior_paper")
    assert (cfg.latent_dim, cfg.batch_size, cfg.kl_warmup_epochs, cfg.early_stopping.patience) == (40, 100, 100, 50)
    assert cfg.optimizer._target_ == "torch.optim.Adam" and cfg.optimizer.lr == 5e-4
    for net in (cfg.encoder, cfg.decoder):
        assert (net.hidden, net.num_layers, net.activation) == (300, 2, "gated")
    assert (cfg.encoder.logvar_min, cfg.encoder.logvar_max) == (-6, 2)
    assert cfg.decoder.likelihood == "bernoulli" and cfg.dataset.input_dim == 784
    assert cfg.prior._target_.endswith("VampPrior")
    assert (cfg.prior.num_components, cfg.prior.init_mean, cfg.prior.init_std) == (500, 0.05, 0.01)
    assert cfg.prior.learnable_weights is False and cfg.eval.num_samples == 5000
    assert compose_config("experiment=vampprior_paper", "prior=mog").prior.num_components == 500


def test_best_preset_is_the_papers_model_with_a_maf_prior_of_the_vampprior_size():
    best = compose_config("experiment=mnist_best")
    assert best == compose_config("experiment=vampprior_paper", "prior=maf")
    assert best.prior._target_.endswith("MAFPrior") and (best.prior.num_layers, best.prior.hidden) == (3, 300)
    assert (best.latent_dim, best.batch_size, best.kl_warmup_epochs, best.eval.num_samples) == (40, 100, 100, 5000)


@pytest.mark.parametrize("prior", PRIORS)
def test_the_hierarchical_presets_are_the_one_level_one_with_two_layers_and_the_same_prior(prior):
    one = compose_config("experiment=vampprior_paper", f"prior={prior}")
    hvae = compose_config("experiment=hvae_paper", f"prior={prior}")
    conv = compose_config("experiment=convhvae_paper", f"prior={prior}")
    assert hvae.prior == one.prior == conv.prior  # the size of p(z2): the one-level preset's
    assert hvae.model.name == conv.model.name == "hvae" and (hvae.model.bottom_dim, hvae.latent_dim) == (40, 40)
    assert (hvae.model.hidden, hvae.model.logvar_min, hvae.model.logvar_max) == (300, -6, 2)
    assert hvae.encoder == one.encoder and hvae.decoder == one.decoder
    for key in ("optimizer", "early_stopping", "eval", "dataset", "kl_warmup_epochs", "batch_size"):
        assert hvae[key] == one[key] == conv[key], key
    assert conv.encoder._target_.endswith("ConvEncoder") and conv.decoder._target_.endswith("ConvDecoder")
    assert (conv.encoder.logvar_min, conv.encoder.logvar_max) == (-6, 2) and "hidden" not in conv.encoder


@pytest.mark.parametrize("prior", ["maf", "nsf", "lars", "vamp_data", "energy", "latent_vae"])
def test_preset_sizes_the_new_priors_like_the_vampprior(prior):
    """500 pseudo-inputs of 784 pixels are 392k numbers; the flows and lars's acceptance network
    get about as many parameters at latent_dim 40, as do the energy network and the latent VAE;
    vamp_data 500 fixed training images."""
    cfg = compose_config("experiment=vampprior_paper", f"prior={prior}")
    module = hydra.utils.instantiate(cfg.prior)
    if prior == "vamp_data":
        assert module.u.shape == (500, 784) and "u" not in dict(module.named_parameters())
        assert cfg.prior.init == "data" and cfg.prior.learnable_weights is False
    else:
        assert sum(p.numel() for p in module.parameters()) == pytest.approx(500 * 784, rel=0.05)


@pytest.mark.slow  # ten runs of the paper's model on MNIST: end to end, if in one process
@pytest.mark.skipif(not REAL_ROOT.is_dir(), reason=f"no binarized MNIST at {REAL_ROOT}")
@pytest.mark.parametrize("prior", PRIORS)
def test_preset_trains_a_few_steps_with_every_prior(make_cfg, prior):
    cfg = make_cfg(
        "experiment=vampprior_paper",
        f"prior={prior}",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "figures.enabled=false",
        "eval.num_samples=2",
        "eval.num_latent_samples=100",
        "dataset.datamodule.limit=600",
        # lars: Z at evaluation from 10^4 proposals rather than 10^5, an evaluation setting cut like the ones above
        *(["prior.eval_samples=10000"] if prior == "lars" else []),
    )
    metrics = vaelab.run(cfg)
    assert metrics["epochs"] == 1 and np.isfinite(metrics["test/loss"]) and np.isfinite(metrics["test/nll"])


def test_compare_priors_preset_sweeps_six_priors_over_three_seeds():
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=compare_priors"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert params.prior.split(",") == SIX_PRIORS and params.seed.split(",") == ["1", "2", "3"]
    assert OmegaConf.to_container(cfg.hydra.sweep)["subdir"].endswith("_${hydra.runtime.choices.prior}_seed${seed}")
    assert cfg.hydra.callbacks.compare._target_ == "vaelab.cli.sweep.SweepReport"
