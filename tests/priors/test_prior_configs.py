"""The priors' Hydra configs: the documented defaults, and the keys that are checked."""

from __future__ import annotations

import hydra
import pytest
import torch
from helpers import PRIORS, compose_config
from helpers.priors import make_prior
from torch import nn

from vaelab.config import check_config
from vaelab.errors import ConfigError
from vaelab.priors import (
    ExemplarPrior,
    FlowPrior,
    GTMPrior,
    GTMVampPrior,
    LatentVAEPrior,
    MAFPrior,
    MoGPrior,
    NSFPrior,
    Prior,
    ResampledPrior,
    StandardPrior,
    VampPrior,
)  # fmt: skip

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", PRIORS)
def test_hydra_config_gives_documented_defaults(name):
    cfg = compose_config(f"prior={name}")
    prior, encoder = hydra.utils.instantiate(cfg.prior), hydra.utils.instantiate(cfg.encoder)
    latent_dim = cfg.latent_dim
    if name == "standard":
        assert isinstance(prior, StandardPrior)
        assert prior.loc.tolist() == [0.0] * latent_dim and prior.scale.tolist() == [1.0] * latent_dim
    elif name == "mog":
        assert isinstance(prior, MoGPrior)
        assert prior.mu.shape == prior.logvar.shape == (16, latent_dim)
    elif name == "vamp":
        assert isinstance(prior, VampPrior)
        assert prior.u.shape == (16, cfg.dataset.input_dim) and prior.logits.shape == (16,)
        assert (prior.input_min, prior.input_max) == (cfg.dataset.input_min, cfg.dataset.input_max)
        # init_mean 0.5, init_std 0.15 are fractions of the data range [0, 16]: N(8, 2.4^2) pixels
        assert prior.u.mean().item() == pytest.approx(0.5 * cfg.dataset.input_max, abs=0.4)
        assert prior.u.std().item() == pytest.approx(0.15 * cfg.dataset.input_max, rel=0.1)
    elif name in ("gtm", "gtm_vamp"):
        assert isinstance(prior, GTMPrior if name == "gtm" else GTMVampPrior)
        half_range = 10.0 if name == "gtm" else 1.0  # gtm: the wider grid (README, "GTM defaults")
        axis = torch.linspace(-half_range, half_range, 4)
        torch.testing.assert_close(prior.grid, torch.cartesian_prod(axis, axis))  # 4 x 4 grid
        assert prior.logits.shape == (16,)
        if name == "gtm":  # two hidden layers of 64 units, then means and log-variances
            linears = [layer for layer in prior.net if isinstance(layer, torch.nn.Linear)]
            assert [(m.in_features, m.out_features) for m in linears] == [(2, 64), (64, 64), (64, 2 * latent_dim)]
    elif name == "flow":
        assert isinstance(prior, FlowPrior)
        assert len(prior.flow.transform.transforms) == 3
        assert prior.flow.transform.transforms[0].hyper[0].out_features == 256
    elif name in ("maf", "nsf"):
        assert isinstance(prior, MAFPrior if name == "maf" else NSFPrior)
        transforms = prior.flow.transform.transforms
        assert len(transforms) == 3 and transforms[0].hyper[0].out_features == 256
        assert [t.order.tolist() for t in transforms] == [[0, 1], [1, 0], [0, 1]]  # the order flips each time
        if name == "nsf":
            assert transforms[0].hyper[-1].out_features == latent_dim * (3 * 8 - 1)  # 8 bins: widths, heights, slopes
    elif name == "lars":
        assert isinstance(prior, ResampledPrior)
        assert (prior.truncation, prior.num_samples, prior.eval_samples, prior.ema_decay) == (100, 1024, 100_000, 0.99)
        assert [m.out_features for m in prior.net if isinstance(m, nn.Linear)] == [100, 100, 1]
    elif name == "vamp_data":
        assert isinstance(prior, VampPrior) and prior.init == "data"
        assert "u" not in dict(prior.named_parameters()) and prior.u.shape == (16, cfg.dataset.input_dim)
    elif name == "exemplar":  # every training input an exemplar, 1000 of them a training step
        assert isinstance(prior, ExemplarPrior) and prior.num_exemplars == 1000
        assert [n for n, _ in prior.named_parameters()] == ["log_sigma"] and prior.log_sigma.item() == 0.0
        prior.init_from_data(torch.arange(2 * cfg.dataset.input_dim).reshape(2, -1) % 17)
        assert prior.exemplars.shape == (2, cfg.dataset.input_dim) and prior.exemplars.dtype == torch.uint8
    elif name == "latent_vae":  # p(z|u) and q(u|z) over a 2-D u; 1 importance sample in training, 100 in eval
        assert isinstance(prior, LatentVAEPrior) and (prior.inner_dim, prior.train_samples, prior.eval_samples) == (
            2,
            1,
            100,
        )
    assert isinstance(prior, Prior)
    prior.eval()  # lars: evaluation's Z
    assert prior(encoder).sample((4,)).shape == (4, latent_dim)


def test_fixed_pseudo_inputs_need_data_init():
    with pytest.raises(
        ConfigError, match=r"^prior.learnable_inputs=false is not allowed with prior.init=random: .*prior.init=data$"
    ):
        check_config(compose_config("prior=vamp", "prior.learnable_inputs=false"))
    check_config(compose_config("prior=vamp", "prior.learnable_inputs=false", "prior.init=data"))  # = prior=vamp_data
    with pytest.raises(ValueError, match="needs init='data'"):
        make_prior("vamp", learnable_inputs=False)


@pytest.mark.parametrize("override", ["prior.truncation=0", "prior.eval_samples=-1", "prior.ema_decay=1.0"])
def test_lars_keys_are_checked(override):
    with pytest.raises(ConfigError, match=override.split("=")[0]):
        check_config(compose_config("prior=lars", override))
