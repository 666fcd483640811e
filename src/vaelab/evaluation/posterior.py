"""The aggregated posterior q(z) = (1/N) sum_n q(z|x_n) of a test set, and the holes it leaves
under the prior: where p(z) puts mass that no encoding fills (Rezende & Viola, 2018)."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Independent, Normal

from vaelab.evaluation.likelihood import Conditional

__all__ = ["AggregatedPosterior", "held_out_holes"]


class AggregatedPosterior:
    """q(z) = (1/N) sum_n N(z | loc_n, diag(scale_n^2)): the mixture of N diagonal-Gaussian encoders."""

    def __init__(self, loc: Tensor, scale: Tensor):
        self.loc, self.scale = loc.double(), scale.double()

    @classmethod
    def from_encoder(cls, encode: Conditional, x: Tensor, batch_size: int = 1024) -> AggregatedPosterior:
        parts = [encode(batch) for batch in x.split(batch_size)]
        if not all(isinstance(q, Independent) and isinstance(q.base_dist, Normal) for q in parts):
            raise TypeError(
                f"the aggregated posterior needs a diagonal Gaussian encoder, got {type(parts[0]).__name__}"
            )
        return cls(torch.cat([q.mean for q in parts]), torch.cat([q.stddev for q in parts]))

    def log_prob(self, z: Tensor, chunk_size: int = 1024) -> Tensor:
        """log q(z) for z of shape (..., L), in float64. Squared distances come from matmuls, so
        memory holds (chunk_size, N) numbers rather than (chunk_size, N, L)."""
        num, dim = self.loc.shape
        precision = self.scale**-2
        const = -self.scale.log().sum(-1) - 0.5 * (self.loc**2 * precision).sum(-1) - 0.5 * dim * math.log(2 * math.pi)
        flat = z.reshape(-1, dim).double()
        log_q = [
            (const - 0.5 * (c**2 @ precision.T) + c @ (self.loc * precision).T).logsumexp(-1)
            for c in flat.split(chunk_size)
        ]
        return (torch.cat(log_q) - math.log(num)).reshape(z.shape[:-1])

    def marginal_log_prob(self, z: Tensor, chunk_size: int = 1024) -> Tensor:
        """log q(z_j) of each dimension's marginal, a 1-D mixture over the N inputs, for z of shape
        (..., L): shape (..., L), in float64. Memory holds (chunk_size, N) numbers at a time."""
        num, dim = self.loc.shape
        flat = z.reshape(-1, dim).double()
        out = torch.empty_like(flat)
        inverse, const = self.scale.reciprocal(), -self.scale.log() - 0.5 * math.log(2 * math.pi)  # (N, L)
        for j in range(dim):
            loc, inv, c = self.loc[:, j], inverse[:, j], const[:, j]
            for start in range(0, flat.shape[0], chunk_size):
                t = (flat[start : start + chunk_size, j, None] - loc) * inv
                out[start : start + chunk_size, j] = (c - 0.5 * t * t).logsumexp(-1)
        return (out - math.log(num)).reshape(z.shape)

    def sample_per_input(self, k: int) -> Tensor:
        """k samples from each q(z|x_n): shape (k, N, L), stratified samples of q(z)."""
        return self.loc + self.scale * torch.randn((k, *self.loc.shape), dtype=self.loc.dtype, device=self.loc.device)

    def conditional_log_prob(self, z: Tensor) -> Tensor:
        """log q(z_kn | x_n) for z of shape (k, N, L)."""
        return Normal(self.loc, self.scale).log_prob(z).sum(-1)

    @property
    def mean(self) -> Tensor:
        return self.loc.mean(0)

    @property
    def variance(self) -> Tensor:
        """Law of total variance: E_x[sigma^2(x)] + Var_x[mu(x)]."""
        return (self.scale**2).mean(0) + self.activity

    @property
    def activity(self) -> Tensor:
        """Cov_x(E_q[z|x]) per dimension; a unit is active above 0.01 (Burda et al., 2016)."""
        return self.loc.var(0, unbiased=False)


def held_out_holes(
    q_z: AggregatedPosterior, z_p: Tensor, num_latent_samples: int, level: float = 0.01
) -> tuple[Tensor, Tensor]:
    """Holes of q(z) under the prior samples z_p, calibrated on encodings *not* in the mixture.

    The inputs are split at random into halves A and B. q_A is the mixture of A's encoders, and
    log q_A at samples of B's encoders (new points of the aggregated posterior) gives its typical
    values: the threshold is their `level` quantile. Returns, averaged over the two ways round:
    the share of prior samples with log q_A(z) below the threshold (`level` when p(z) is the
    aggregated posterior, in any dimension), and their mean percentile rank among the log q_A
    values of B's samples (0.5 when p = q, 0 where the prior puts its mass where nothing encodes).
    Calibrating on q's own samples instead counts each sample's own component, which in high
    dimensions dominates the mixture and puts the threshold far above any new point."""
    num_inputs = q_z.loc.shape[0]
    if num_inputs < 2:
        nan = torch.tensor(math.nan, dtype=torch.float64)
        return nan, nan
    order = torch.randperm(num_inputs, device=q_z.loc.device)
    halves = order[: num_inputs // 2], order[num_inputs // 2 :]
    fractions, ranks = [], []
    for a, b in (halves, halves[::-1]):
        q_a, q_b = AggregatedPosterior(q_z.loc[a], q_z.scale[a]), AggregatedPosterior(q_z.loc[b], q_z.scale[b])
        log_q_b = q_a.log_prob(q_b.sample_per_input(math.ceil(num_latent_samples / len(b)))).flatten().sort().values
        log_q_p = q_a.log_prob(z_p)
        fractions.append((log_q_p < torch.quantile(log_q_b, level)).double().mean())
        ranks.append(torch.searchsorted(log_q_b, log_q_p).double().mean() / log_q_b.numel())
    return torch.stack(fractions).mean(), torch.stack(ranks).mean()
