"""The MLP encoder q(z|x) and decoder p(x|z), each an nn.Module that returns a torch Distribution.

Inputs are flat vectors in data units (digits: 0..16, binarized MNIST: 0/1). The encoder
divides by `input_scale` itself, so pseudo-inputs of the VampPrior live in the same units as
the data and go through exactly the same computation.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Bernoulli, ContinuousBernoulli, Distribution, Independent, Normal

from vaelab.nets.layers import mlp
from vaelab.nets.likelihoods import DiscretizedLogistic, LazyCategorical

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
    discretized to `num_levels` grey levels (its location in 0..num_levels-1 through a sigmoid, its
    log-scale bounded below by LOG_SCALE_MIN), or a continuous Bernoulli density on [0, 1]."""

    LOG_SCALE_MIN = -3.0  # a scale of 0.05 grey levels: all but certain of one level

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
        per_pixel = {"categorical": num_levels, "discretized_logistic": 2}.get(likelihood, 1)
        self.net = mlp(latent_dim, hidden, num_layers, output_dim * per_pixel, activation)

    def forward(self, z: torch.Tensor) -> Distribution:
        logits = self.net(z)
        if self.likelihood == "categorical":
            logits = logits.unflatten(-1, (self.output_dim, self.num_levels))
            # Data arrive as floats in 0..num_levels-1; validation would cost a pass per call.
            return Independent(LazyCategorical(logits, validate_args=False), 1)
        if self.likelihood == "discretized_logistic":
            location, log_scale = logits.unflatten(-1, (self.output_dim, 2)).unbind(-1)
            location = (self.num_levels - 1) * torch.sigmoid(location)
            log_scale = log_scale.clamp_min(self.LOG_SCALE_MIN)
            return Independent(DiscretizedLogistic(location, log_scale, self.num_levels, validate_args=False), 1)
        if self.likelihood == "continuous_bernoulli":
            return Independent(ContinuousBernoulli(logits=logits, validate_args=False), 1)
        return Independent(Bernoulli(logits=logits, validate_args=False), 1)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z] in data units: what the figures show for a latent point."""
        dist = self(z).base_dist
        if self.likelihood == "categorical":
            levels = torch.arange(self.num_levels, dtype=z.dtype, device=z.device)
            return dist.probs @ levels
        if self.likelihood in ("discretized_logistic", "continuous_bernoulli"):
            return dist.mean  # (a continuous Bernoulli's parameter is not its mean)
        return dist.probs
