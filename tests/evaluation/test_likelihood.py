"""The importance-sampled log-likelihood as a specification, on probabilistic PCA: exact with the
exact posterior as proposal, a stochastic lower bound otherwise that tightens as S grows, and never
below the ELBO of the same samples."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.ppca import PPCA

from vaelab.evaluation.likelihood import importance_sampled_log_likelihood, sample_averages


@pytest.mark.parametrize("num_samples", [1, 10, 100])
def test_is_estimate_with_the_exact_posterior_is_the_exact_likelihood(num_samples):
    ppca = PPCA()
    torch.manual_seed(0)
    # chunk_size 7 divides none of the S, so partial chunks are exercised too
    estimate = importance_sampled_log_likelihood(
        ppca.x, ppca.exact_posterior, ppca.decode, ppca.prior, num_samples, chunk_size=7
    )
    torch.testing.assert_close(estimate, ppca.log_px, atol=1e-4, rtol=0)


def test_is_estimate_with_a_worse_proposal_is_a_lower_bound_that_tightens_with_S():
    ppca = PPCA()
    torch.manual_seed(0)
    gaps = []
    for num_samples in (1, 10, 100, 1000):
        # log p(x) - estimate for 2 repetitions x 200 inputs
        gap = torch.stack(
            [
                ppca.log_px
                - importance_sampled_log_likelihood(
                    ppca.x, ppca.worse_posterior, ppca.decode, ppca.prior, num_samples, chunk_size=64
                )
                for _ in range(2)
            ]
        )
        standard_error = gap.std() / math.sqrt(gap.numel())
        assert gap.mean() > -3 * standard_error, f"S={num_samples}: estimate exceeds log p(x) on average"
        gaps.append(gap.mean().item())
    assert gaps == sorted(gaps, reverse=True), f"the gap should shrink as S grows: {gaps}"
    assert gaps[0] > 1.0 and gaps[-1] < 0.05


def test_is_estimate_is_at_least_the_elbo_of_the_same_samples_for_every_input():
    ppca = PPCA()
    torch.manual_seed(0)
    out = sample_averages(ppca.x, ppca.worse_posterior, ppca.decode, ppca.prior, num_samples=30, chunk_size=8)
    elbo = out["rec"] + out["log_pz"] - out["log_qzx"]
    assert (out["log_px"] >= elbo - 1e-12).all()  # log-mean-exp >= mean (Jensen)
