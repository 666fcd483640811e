"""Probabilistic PCA, a linear-Gaussian VAE whose log p(x) and posterior are known in closed form:
z ~ N(0, I), x | z ~ N(Wz + b, s^2 I), so log p(x) = log N(x | b, WW^T + s^2 I)."""

from __future__ import annotations

import torch
from torch.distributions import Independent, MultivariateNormal, Normal

f64 = dict(dtype=torch.float64)


class PPCA:
    def __init__(self, input_dim: int = 6, latent_dim: int = 3, noise: float = 0.5, num_inputs: int = 200):
        g = torch.Generator().manual_seed(0)
        self.W, self.b, self.s = (
            torch.randn(input_dim, latent_dim, generator=g, **f64),
            torch.randn(input_dim, generator=g, **f64),
            noise,
        )
        self.prior = Independent(Normal(torch.zeros(latent_dim, **f64), torch.ones(latent_dim, **f64)), 1)
        z = torch.randn(num_inputs, latent_dim, generator=g, **f64)
        self.x = z @ self.W.T + self.b + noise * torch.randn(num_inputs, input_dim, generator=g, **f64)
        marginal = MultivariateNormal(self.b, self.W @ self.W.T + noise**2 * torch.eye(input_dim, **f64))
        self.log_px = marginal.log_prob(self.x)
        # Exact posterior: N(C W^T (x - b) / s^2, C) with C = (I + W^T W / s^2)^-1.
        self.cov = torch.linalg.inv(torch.eye(latent_dim, **f64) + self.W.T @ self.W / noise**2)

    def posterior_mean(self, x):
        return (x - self.b) @ self.W @ self.cov / self.s**2

    def exact_posterior(self, x):
        return MultivariateNormal(self.posterior_mean(x), self.cov)

    def worse_posterior(self, x):
        """Diagonal, shifted by 0.5 and twice as wide: a proposal an amortised encoder might give."""
        return Independent(Normal(self.posterior_mean(x) + 0.5, 2 * self.cov.diagonal().sqrt()), 1)

    def decode(self, z):
        return Independent(Normal(z @ self.W.T + self.b, self.s), 1)
