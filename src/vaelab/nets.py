"""Encoders q(z|x) and decoders p(x|z), each an nn.Module that returns a torch Distribution.

Inputs are flat vectors in data units (digits: 0..16, binarized MNIST: 0/1). The encoder
divides by `input_scale` itself, so pseudo-inputs of the VampPrior live in the same units as
the data and go through exactly the same computation.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Bernoulli, Categorical, Distribution, Independent, Normal
from torch.distributions.utils import lazy_property, logits_to_probs

ACTIVATIONS = ("leaky_relu", "gated")
LIKELIHOODS = ("categorical", "bernoulli")


class GatedLinear(nn.Module):
    """h * sigmoid(g): the gated layer of the VampPrior paper (Tomczak & Welling, 2018)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.h = nn.Linear(in_features, out_features)
        self.g = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.h(x) * torch.sigmoid(self.g(x))


class LazyCategorical(Categorical):
    """torch's Categorical from unnormalised logits, normalised only when `logits` or `probs` is
    asked for. log_prob(x) = l[x] - logsumexp(l), the same numbers as Categorical's (l - logsumexp(l))[x]
    without writing the normalised (..., K) tensor first: the decoder's likelihood of a digits
    batch (64 pixels x 17 levels) takes half the time (`scripts/bench.py --mode everyday`)."""

    def __init__(self, logits: torch.Tensor, validate_args: bool | None = None):
        if logits.dim() < 1:
            raise ValueError("`logits` must be at least one-dimensional")
        self._param = self._raw = logits
        self._num_events = logits.shape[-1]
        Distribution.__init__(self, logits.shape[:-1], validate_args=validate_args)

    @lazy_property
    def logits(self) -> torch.Tensor:
        return self._raw - self._raw.logsumexp(-1, keepdim=True)

    @lazy_property
    def probs(self) -> torch.Tensor:
        return logits_to_probs(self.logits)

    def expand(self, batch_shape, _instance=None) -> LazyCategorical:
        return LazyCategorical(self._raw.expand(torch.Size(batch_shape) + (self._num_events,)), self._validate_args)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        index, raw = torch.broadcast_tensors(value.long().unsqueeze(-1), self._raw)
        return raw.gather(-1, index[..., :1]).squeeze(-1) - self._raw.logsumexp(-1)


def mlp(in_features: int, hidden: int, num_layers: int, out_features: int, activation: str) -> nn.Sequential:
    """`num_layers` hidden layers of width `hidden`, then a linear output layer."""
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(num_layers):
        if activation == "gated":
            layers.append(GatedLinear(width, hidden))
        else:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU()]
        width = hidden
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


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
    """p(x|z), factorised over pixels: categorical over `num_levels` values or Bernoulli."""

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
        per_pixel = num_levels if likelihood == "categorical" else 1
        self.net = mlp(latent_dim, hidden, num_layers, output_dim * per_pixel, activation)

    def forward(self, z: torch.Tensor) -> Distribution:
        logits = self.net(z)
        if self.likelihood == "categorical":
            logits = logits.unflatten(-1, (self.output_dim, self.num_levels))
            # Data arrive as floats in 0..num_levels-1; validation would cost a pass per call.
            return Independent(LazyCategorical(logits, validate_args=False), 1)
        return Independent(Bernoulli(logits=logits, validate_args=False), 1)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z] in data units: the picture we show for a latent point."""
        dist = self(z).base_dist
        if self.likelihood == "categorical":
            levels = torch.arange(self.num_levels, dtype=z.dtype, device=z.device)
            return dist.probs @ levels
        return dist.probs
