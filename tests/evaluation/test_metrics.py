"""The evaluation's measures of the latent space on toy models where they are known: no holes and no
marginal KL when the prior is the aggregated posterior; mostly holes, one bit of mutual information
and two active units for a standard prior around two far clusters."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from vaelab.evaluation.metrics import evaluate

f64 = dict(dtype=torch.float64)


def toy_encoder(x):
    """A fixed diagonal-Gaussian 'encoder' of 2-D inputs."""
    return Independent(Normal(x, 0.05 + 0.1 * x.abs()), 1)


def test_a_prior_equal_to_the_aggregated_posterior_has_no_holes():
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(2), **f64)
    q = toy_encoder(x)
    prior = MixtureSameFamily(Categorical(logits=torch.zeros(100, **f64)), Independent(Normal(q.mean, q.stddev), 1))
    decode = lambda z: Independent(Normal(z, 1.0), 1)
    torch.manual_seed(0)
    m = evaluate(x, toy_encoder, decode, prior, num_samples=50, chunk_size=20, num_latent_samples=20000)
    assert abs(m["test/reverse_kl"]) < 1e-6  # log p = log q at every sample
    assert m["test/hole_fraction"] == pytest.approx(0.01, abs=0.003)  # q's own 1st percentile
    assert m["test/marginal_kl"] == pytest.approx(0.0, abs=0.05)


def test_a_standard_prior_around_two_far_clusters_is_mostly_holes():
    x = torch.tensor([[3.0, 3.0], [-3.0, -3.0]], **f64).repeat(50, 1)
    prior = Independent(Normal(torch.zeros(2, **f64), torch.ones(2, **f64)), 1)
    decode = lambda z: Independent(Normal(z, 1.0), 1)
    torch.manual_seed(0)
    m = evaluate(x, lambda x: Independent(Normal(x, 0.3), 1), decode, prior, num_samples=10)
    assert m["test/hole_fraction"] > 0.9 and m["test/reverse_kl"] > 5
    assert m["test/hole_fraction_heldout"] > 0.9 and m["test/hole_rank"] < 0.05
    assert m["test/mutual_info"] == pytest.approx(math.log(2), abs=1e-3)  # z tells which of 2 clusters
    assert m["test/active_units"] == 2


def test_the_marginal_kl_splits_into_total_correlation_and_dimension_wise_kl_as_by_quadrature():
    """q(z) = (N((1, 1), 0.7^2 I) + N((-1, -1), 0.7^2 I)) / 2 under N(0, I): its total correlation and
    dimension-wise KL by quadrature on a grid, against the evaluation's Monte Carlo estimates; and
    I(x;z) + TC + dimension-wise KL = KL within Monte Carlo error (Chen et al., 2018)."""
    x, scale = torch.tensor([[1.0, 1.0], [-1.0, -1.0]], **f64), 0.7
    encode = lambda batch: Independent(Normal(batch, torch.full_like(batch, scale)), 1)
    decode = lambda z: Independent(Normal(z, torch.ones_like(z)), 1)
    prior = Independent(Normal(torch.zeros(2, **f64), torch.ones(2, **f64)), 1)
    torch.manual_seed(0)
    m = evaluate(x, encode, decode, prior, num_samples=4000, num_latent_samples=40_000, exact=False)

    axis = torch.linspace(-7, 7, 701, **f64)
    step = (axis[1] - axis[0]).item()
    grid = torch.cartesian_prod(axis, axis)
    components = Independent(Normal(x, scale), 1)
    log_q = (components.log_prob(grid[:, None, :]).logsumexp(-1) - math.log(2)).reshape(701, 701)
    log_q1 = Normal(x[:, 0], scale).log_prob(axis[:, None]).logsumexp(-1) - math.log(2)  # both marginals alike
    q = log_q.exp()
    total_correlation = (q * (log_q - log_q1[:, None] - log_q1[None, :])).sum() * step**2
    dimwise = 2 * (log_q1.exp() * (log_q1 - Normal(0.0, 1.0).log_prob(axis))).sum() * step
    assert m["test/total_correlation"] == pytest.approx(total_correlation.item(), abs=0.01)
    assert m["test/dimwise_kl"] == pytest.approx(dimwise.item(), abs=0.01)
    split = m["test/mutual_info"] + m["test/total_correlation"] + m["test/dimwise_kl"]
    assert split == pytest.approx(m["test/kl"], abs=0.02)


def test_a_prior_that_does_not_factorise_gets_the_total_correlation_alone():
    x = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]], **f64)
    encode = lambda batch: Independent(Normal(batch, torch.full_like(batch, 0.5)), 1)
    decode = lambda z: Independent(Normal(z, torch.ones_like(z)), 1)
    mixture = MixtureSameFamily(
        Categorical(logits=torch.zeros(3, **f64)), Independent(Normal(x, torch.full_like(x, 0.5)), 1)
    )
    torch.manual_seed(0)
    m = evaluate(x, encode, decode, mixture, num_samples=10, num_latent_samples=3000, exact=False)
    assert m["test/total_correlation"] > 0.05 and "test/dimwise_kl" not in m
