"""The discretized logistic likelihood: a proper distribution over the levels 0..K-1 whose
log_prob is the logistic's mass on each level's bin, accurate far in the tails."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import compose_config

import vaelab
from vaelab.nets import DiscretizedLogistic, MLPDecoder


def parameters(n: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    loc = torch.rand(n, generator=generator, dtype=torch.float64) * 300 - 20  # some beyond the ends
    log_scale = torch.randn(n, generator=generator, dtype=torch.float64) * 2
    return loc, log_scale


@pytest.mark.parametrize("levels", [2, 17, 256])
def test_the_probabilities_of_all_levels_sum_to_one(levels):
    loc, log_scale = parameters()
    probabilities = DiscretizedLogistic(loc * levels / 256, log_scale, levels).probs_of_levels()
    assert probabilities.shape == (40, levels) and (probabilities >= 0).all()
    assert torch.allclose(probabilities.sum(-1), torch.ones(40, dtype=torch.float64), atol=1e-10)


def test_log_prob_is_the_logistic_mass_of_each_levels_bin():
    loc, log_scale = (p[:, None] for p in parameters())
    levels = torch.tensor([0.0, 1.0, 37.0, 128.0, 254.0, 255.0], dtype=torch.float64)
    scale, sigmoid = log_scale.exp(), torch.sigmoid
    upper, lower = sigmoid((levels + 0.5 - loc) / scale), sigmoid((levels - 0.5 - loc) / scale)
    direct = torch.where(levels == 0, upper, torch.where(levels == 255, 1 - lower, upper - lower))
    assert torch.allclose(DiscretizedLogistic(loc, log_scale).log_prob(levels).exp(), direct, atol=1e-14)


def test_far_in_the_tail_the_log_probability_is_still_exact():
    """log(sigmoid(200.5) - sigmoid(199.5)) = -199.5 + log(1 - e^-1): both sigmoids round to 1."""
    zero = torch.zeros(1, dtype=torch.float64)
    found = DiscretizedLogistic(zero, zero).log_prob(torch.tensor([200.0], dtype=torch.float64))
    assert found.item() == pytest.approx(-199.5 + math.log(1 - math.exp(-1)), abs=1e-12)


def test_samples_follow_the_probabilities_of_the_levels():
    loc = torch.tensor([0.3, 120.0, 254.0], dtype=torch.float64)
    log_scale = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    distribution = DiscretizedLogistic(loc, log_scale)
    samples = distribution.sample((40000,))
    found = torch.stack([torch.bincount(samples[:, i].long(), minlength=256) for i in range(3)]) / 40000
    expected = distribution.probs_of_levels()
    assert (found - expected).abs().max() < 5 * (expected * (1 - expected) / 40000).sqrt().max() + 1e-3


def test_the_decoder_gives_one_distribution_per_pixel_with_its_mean_in_range():
    decoder = MLPDecoder(2, 6, hidden=8, likelihood="discretized_logistic", num_levels=256)
    z = torch.randn(5, 2)
    px = decoder(z)
    assert px.batch_shape == (5,) and px.event_shape == (6,)
    x = torch.randint(0, 256, (5, 6)).float()
    assert torch.isfinite(px.log_prob(x)).all() and (px.log_prob(x) < 0).all()
    mean = decoder.mean(z)
    assert mean.shape == (5, 6) and (mean >= 0).all() and (mean <= 255).all()


def test_a_short_run_on_the_digits_with_a_discretized_logistic(tmp_path):
    cfg = compose_config(
        "dataset.likelihood=discretized_logistic",
        "trainer=fast",
        "figures.enabled=false",
        "eval.num_samples=10",
        "eval.num_latent_samples=200",
        "eval.quality.enabled=false",
        "eval.exact_grid=8",  # a coarse quadrature: the test asks for a finite value, not its precision
        "eval.exact_prior_grid=32",
        f"run_dir={tmp_path / 'run'}",
    )
    metrics = vaelab.run(cfg)
    assert math.isfinite(metrics["test/nll"]) and metrics["test/nll"] <= -metrics["test/elbo"] + 1e-3
    assert math.isfinite(metrics["test/nll_exact"])
