"""A hierarchical prior: a small VAE over the latent codes (the two-stage and LaDDer style, Dai &
Wipf, 2019; Lin & Clark, 2020),

    p(z) = ∫ p(z|u) p(u) du,   p(u) = N(0, I) over a low-dimensional u,   p(z|u) = N(mu(u), diag s^2(u)),

trained jointly with the VAE through an inner encoder q(u|z). Sampling is exact (u ~ p(u), then
z ~ p(z|u)). log p(z) has no closed form: it is estimated by importance sampling with q(u|z) as the
proposal,

    log p(z) ≈ log (1/K) sum_k p(z|u_k) p(u_k) / q(u_k|z),   u_k ~ q(u|z),

with K = `train_samples` in training (K = 1: the inner ELBO, a lower bound) and `eval_samples` in
eval mode. The estimate is low on average and approaches log p(z) as K grows, so the test NLL of a
run with this prior is not the usual stochastic upper bound: the Distribution says so
(`exact_log_prob = False`) and reports the estimator's standard error, measured on the weights of
the points it evaluated.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal, constraints

from vaelab.nets.hierarchy import GaussianNet

__all__ = ["LatentVAE", "LatentVAEPrior"]


class LatentVAE(Distribution):
    """p(z) = ∫ p(z|u) N(u; 0, I) du with `conditional(u)` = p(z|u) and `inner(z)` = q(u|z); log_prob
    by importance sampling with `num_samples` samples of q(u|z) per point."""

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = True
    exact_log_prob = False

    def __init__(self, conditional: GaussianNet, inner: GaussianNet, latent_dim: int, inner_dim: int, num_samples: int):
        self.conditional, self.inner, self.num_samples = conditional, inner, num_samples
        like = next(conditional.parameters())
        self.base = Independent(Normal(like.new_zeros(inner_dim), like.new_ones(inner_dim)), 1)  # p(u)
        self.stderr_sum, self.points = 0.0, 0  # over the points log_prob has seen, for the estimator's report
        super().__init__(torch.Size(), torch.Size([latent_dim]), validate_args=False)

    def log_prob(self, z: Tensor) -> Tensor:
        q = self.inner(z)
        u = q.rsample((self.num_samples,))  # (K, *batch, inner_dim)
        log_w = self.conditional(u).log_prob(z) + self.base.log_prob(u) - q.log_prob(u)
        if (
            self.num_samples > 1 and not torch.is_grad_enabled()
        ):  # delta method: se(log mean w) = sd(w) / (sqrt(K) mean(w))
            w = torch.exp(log_w - log_w.max(0).values).double()
            stderr = w.std(0) / (math.sqrt(self.num_samples) * w.mean(0))
            self.stderr_sum += float(stderr.sum())
            self.points += stderr.numel()
        return log_w.logsumexp(0) - math.log(self.num_samples)

    @property
    def log_prob_estimator(self) -> str:
        text = f"importance sampling over K = {self.num_samples} samples of q(u|z)"
        if self.points:
            text += (
                f"; standard error of log p(z) {self.stderr_sum / self.points:.2g} on average over {self.points} points"
            )
        return text

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        return self.conditional(self.base.rsample(sample_shape)).rsample()

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)


class LatentVAEPrior(nn.Module):
    """p(z) = ∫ p(z|u) p(u) du over a u of `inner_dim` dimensions (see the module): p(z|u) and q(u|z)
    are Gaussians of `num_layers` layers of `hidden` units; log p(z) is importance-sampled with
    `train_samples` samples of q(u|z) in training and `eval_samples` in eval mode."""

    def __init__(
        self,
        latent_dim: int,
        inner_dim: int = 2,
        hidden: int = 64,
        num_layers: int = 2,
        train_samples: int = 1,
        eval_samples: int = 100,
        logvar_min: float | None = -8.0,
        logvar_max: float | None = 4.0,
    ):
        super().__init__()
        self.latent_dim, self.inner_dim = latent_dim, inner_dim
        self.train_samples, self.eval_samples = train_samples, eval_samples
        bounds = {"logvar_min": logvar_min, "logvar_max": logvar_max}
        self.conditional = GaussianNet(inner_dim, latent_dim, hidden, num_layers, "leaky_relu", **bounds)
        self.inner = GaussianNet(latent_dim, inner_dim, hidden, num_layers, "leaky_relu", **bounds)

    def forward(self, encoder: nn.Module | None = None) -> LatentVAE:
        samples = self.train_samples if self.training else self.eval_samples
        return LatentVAE(self.conditional, self.inner, self.latent_dim, self.inner_dim, samples)
