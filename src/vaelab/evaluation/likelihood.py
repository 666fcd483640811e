"""The importance-sampled log-likelihood (Burda et al., 2016), with q(z|x) as the proposal:

    log p(x_n) ≈ log (1/S) sum_s p(x_n|z_ns) p(z_ns) / q(z_ns|x_n),   z_ns ~ q(z|x_n),

below log p(x_n) on average and approaching it as S grows. The terms of the ELBO are averaged over
the same samples, so the estimate is at least the ELBO for every input.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Distribution

__all__ = ["Conditional", "importance_sampled_log_likelihood", "sample_averages"]

Conditional = Callable[[Tensor], Distribution]


def sample_averages(
    x: Tensor, encode: Conditional, decode: Conditional, prior: Distribution, num_samples: int, chunk_size: int
) -> dict[str, Tensor]:
    """Per input, over the same S samples z_s ~ q(z|x): the IS estimate `log_px` and the means of
    `rec` = log p(x|z), `log_pz` and `log_qzx`, all float64. Samples are drawn `chunk_size` at a
    time, so memory holds (chunk_size, len(x)) latent points whatever S is; the sum of weights is
    a running log-sum-exp."""
    q = encode(x)
    log_sum_w = torch.full(x.shape[:1], -math.inf, dtype=torch.float64, device=x.device)
    sums = {key: torch.zeros_like(log_sum_w) for key in ("rec", "log_pz", "log_qzx")}
    for start in range(0, num_samples, chunk_size):
        z = q.sample((min(chunk_size, num_samples - start),))  # (chunk, N, L)
        terms = {"rec": decode(z).log_prob(x), "log_pz": prior.log_prob(z), "log_qzx": q.log_prob(z)}
        terms = {key: value.double() for key, value in terms.items()}
        log_w = terms["rec"] + terms["log_pz"] - terms["log_qzx"]
        log_sum_w = torch.logaddexp(log_sum_w, log_w.logsumexp(0))
        for key, value in terms.items():
            sums[key] += value.sum(0)
    averages = {key: value / num_samples for key, value in sums.items()}
    return {"log_px": log_sum_w - math.log(num_samples), **averages}


def importance_sampled_log_likelihood(
    x: Tensor, encode: Conditional, decode: Conditional, prior: Distribution, num_samples: int, chunk_size: int = 100
) -> Tensor:
    """log p(x) per input, estimated with q(z|x) as the proposal and S samples."""
    return sample_averages(x, encode, decode, prior, num_samples, chunk_size)["log_px"]
