"""The hierarchical prior (a VAE over the codes): its importance-sampled log p(z) approaches the
quadrature over u from below as its sample count grows, its samples have the quadrature's mean,
and the evaluation reports it as estimated, with its error."""

from __future__ import annotations

import pytest
import torch
from helpers.priors import build

from vaelab.priors import LatentVAEPrior

pytestmark = pytest.mark.usefixtures("one_thread")


def quadrature_over_u(prior: LatentVAEPrior, z: torch.Tensor, side: int = 401, width: float = 7.0) -> torch.Tensor:
    """log ∫ p(z|u) N(u; 0, I) du on a grid over [-width, width]^2 of u, for z of shape (M, 2)."""
    axis = torch.linspace(-width, width, side, dtype=torch.float64)
    u = torch.cartesian_prod(axis, axis)  # (G, 2)
    cell = ((axis[1] - axis[0]) ** 2).log()
    dist = prior.eval()()
    with torch.no_grad():
        log_joint = dist.conditional(u[:, None, :]).log_prob(z) + dist.base.log_prob(u)[:, None]  # (G, M)
    return log_joint.logsumexp(0) + cell


def test_the_estimate_approaches_the_quadrature_over_u_from_below_as_k_grows():
    prior, _ = build("latent_vae", "trained")  # float64, its networks fitted to two blobs
    z = prior.eval()().sample((6,))
    exact = quadrature_over_u(prior, z)
    gaps = []
    for k in (1, 10, 100, 1000):
        prior.eval_samples = k
        with torch.no_grad():
            estimates = torch.stack([prior.eval()().log_prob(z) for _ in range(200)])  # (repeats, M)
        gaps.append((estimates.mean(0) - exact).mean().item())
    assert all(gap < 2e-3 for gap in gaps), gaps  # low on average (Jensen), up to Monte Carlo noise
    assert gaps[0] < gaps[1] < gaps[2] <= gaps[3] + 2e-3, gaps  # and nearer as K grows
    assert abs(gaps[3]) < 0.01, gaps


def test_samples_have_the_mean_of_the_quadrature_over_u():
    prior, _ = build("latent_vae", "trained")
    dist = prior.eval()()
    axis = torch.linspace(-7, 7, 401, dtype=torch.float64)
    u = torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        weights = dist.base.log_prob(u).exp() * (axis[1] - axis[0]) ** 2
        mean = (weights[:, None] * dist.conditional(u).mean).sum(0)
        samples = dist.sample((200_000,))
    standard_error = samples.std(0) / 200_000**0.5
    assert ((samples.mean(0) - mean).abs() < 5 * standard_error).all(), (samples.mean(0), mean)


def test_the_distribution_says_its_log_density_is_estimated_and_with_what_error():
    prior, _ = build("latent_vae", "fresh")
    dist = prior.eval()()
    assert dist.exact_log_prob is False and dist.log_prob_estimator.startswith("importance sampling over K = 10 ")
    with torch.no_grad():
        dist.log_prob(torch.randn(7, 2, dtype=torch.float64))
    assert "on average over 7 points" in dist.log_prob_estimator
    assert prior.train()().num_samples == 1  # training: the inner ELBO
