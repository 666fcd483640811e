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
