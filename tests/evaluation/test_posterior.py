"""The aggregated posterior q(z) = (1/N) sum_n q(z | x_n)."""

from __future__ import annotations

import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from vaelab.evaluation.posterior import AggregatedPosterior

f64 = dict(dtype=torch.float64)


def test_aggregated_posterior_is_the_uniform_mixture_of_the_encoders():
    g = torch.Generator().manual_seed(1)
    loc, scale = torch.randn(30, 4, generator=g, **f64), torch.rand(30, 4, generator=g, **f64) + 0.1
    q_z = AggregatedPosterior(loc, scale)
    mixture = MixtureSameFamily(Categorical(logits=torch.zeros(30, **f64)), Independent(Normal(loc, scale), 1))
    z = 2 * torch.randn(5, 7, 4, generator=g, **f64)
    torch.testing.assert_close(q_z.log_prob(z, chunk_size=8), mixture.log_prob(z))
    # law of total variance = the mixture's moments
    torch.testing.assert_close(q_z.mean, mixture.mean)
    torch.testing.assert_close(q_z.variance, mixture.variance)
