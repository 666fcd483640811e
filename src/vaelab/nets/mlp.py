"""The MLP encoder q(z|x) and decoder p(x|z), each an nn.Module that returns a torch Distribution.

Inputs are flat vectors in data units (digits: 0..16, binarized MNIST: 0/1). The encoder
divides by `input_scale` itself, so pseudo-inputs of the VampPrior live in the same units as
the data and go through exactly the same computation.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from vaelab.nets.layers import mlp
from vaelab.nets.likelihoods import PixelLikelihood

__all__ = ["MLPDecoder", "MLPEncoder"]


class MLPEncoder(nn.Module):
    """q(z|x) = N(mu(x), diag(exp(logvar(x))))."""

    def __init__(
        self,
        input_dim: int,
        latent_dim: int,
        hidden: int = 256,
        num_layers: int = 2,
        activation: str = "leaky_relu",
        input_scale: float = 1.0,
        logvar_min: float | None = None,
        logvar_max: float | None = None,
    ):
        super().__init__()
        self.input_dim, self.latent_dim = input_dim, latent_dim
        self.input_scale = float(input_scale)
        self.logvar_min, self.logvar_max = logvar_min, logvar_max
        self.net = mlp(input_dim, hidden, num_layers, 2 * latent_dim, activation)

    def gaussian_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.input_scale != 1.0:  # binarized MNIST is already in [0, 1]: no pass over the batch
            x = x / self.input_scale
        mu, logvar = self.net(x).chunk(2, dim=-1)
        if self.logvar_min is not None or self.logvar_max is not None:
            # Hard bounds keep the posterior variance in a sane range (the paper uses [-6, 2]).
            logvar = torch.clamp(logvar, self.logvar_min, self.logvar_max)
        return mu, logvar

    def forward(self, x: torch.Tensor) -> Distribution:
        mu, logvar = self.gaussian_params(x)
        return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)


class MLPDecoder(nn.Module):
    """p(x|z), factorised over pixels: categorical over `num_levels` values, Bernoulli, a logistic
    discretized to `num_levels` grey levels, or a continuous Bernoulli density on [0, 1]
    (`PixelLikelihood`)."""

    def __init__(
        self,
        latent_dim: int,
        output_dim: int,
        hidden: int = 256,
        num_layers: int = 2,
        activation: str = "leaky_relu",
        likelihood: str = "categorical",
        num_levels: int = 17,
    ):
        super().__init__()
        self.output_dim, self.likelihood, self.num_levels = output_dim, likelihood, num_levels
        self.pixels = PixelLikelihood(likelihood, num_levels)
        self.net = mlp(latent_dim, hidden, num_layers, output_dim * self.pixels.per_pixel, activation)

    def forward(self, z: torch.Tensor) -> Distribution:
        return self.pixels.distribution(self.net(z).unflatten(-1, (self.output_dim, self.pixels.per_pixel)))

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z] in data units: what the figures show for a latent point."""
        return self.pixels.mean(self(z))
