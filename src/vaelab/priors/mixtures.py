"""Priors that are mixtures of diagonal Gaussians with their own parameters: the standard normal
(one component), a learnable mixture of Gaussians, and GTM (a grid mapped to the components)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal

from vaelab.priors.base import add_mixing_logits, square_grid

__all__ = ["DiagonalGaussianMixture", "GTMPrior", "MoGPrior", "StandardPrior", "diagonal_gaussian_mixture"]


class DiagonalGaussianMixture(MixtureSameFamily):
    """MixtureSameFamily(Categorical(logits), Independent(Normal(mu, exp(0.5 logvar)), 1)) with a
    fast `log_prob`; sampling and everything else come from the parent.

    The parent broadcasts z against all K components, an (N, K, D) tensor. Here the squared
    distance is expanded into matrix products, (N, D) @ (D, K):
        sum_l (z_l - mu_kl)^2 / var_kl = z^2 @ (1/var_k) - 2 z @ (mu_k/var_k) + sum_l mu_kl^2/var_kl,
    after shifting z and mu by the mean of the component means (the distance does not change, and
    smaller numbers lose less to cancellation in float32).
    """

    def __init__(self, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor):
        super().__init__(Categorical(logits=logits), Independent(Normal(mu, torch.exp(0.5 * logvar)), 1))
        self.mu, self.logvar = mu, logvar

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        if self.mu.dim() != 2:  # a batch of mixtures: the parent's broadcast handles it
            return super().log_prob(z)
        if self._validate_args:
            self._validate_sample(z)
        centre = self.mu.mean(dim=0).detach()
        z, mu = z - centre, self.mu - centre
        precision = torch.exp(-self.logvar)  # (K, D)
        squared = (z * z) @ precision.T - 2 * z @ (mu * precision).T + (mu * mu * precision).sum(-1)
        log_normaliser = -0.5 * (self.logvar.sum(-1) + mu.shape[-1] * math.log(2 * math.pi))
        log_weights = self.mixture_distribution.logits  # normalised by Categorical
        return torch.logsumexp(log_weights + log_normaliser - 0.5 * squared, dim=-1)


def diagonal_gaussian_mixture(logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> Distribution:
    """sum_k softmax(logits)_k N(z | mu_k, diag(exp(logvar_k))).

    The log-density sums log N over latent dimensions *before* the logsumexp over components,
    and the standard deviation is exp(0.5 logvar) for density and sampling.
    """
    return DiagonalGaussianMixture(logits, mu, logvar)


class StandardPrior(nn.Module):
    """p(z) = N(0, I)."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.register_buffer("loc", torch.zeros(latent_dim))
        self.register_buffer("scale", torch.ones(latent_dim))

    def forward(self, encoder: nn.Module | None = None) -> Distribution:
        return Independent(Normal(self.loc, self.scale), 1)


class MoGPrior(nn.Module):
    """A learnable mixture of K diagonal Gaussians."""

    def __init__(self, latent_dim: int, num_components: int = 16, init_scale: float = 1.0):
        super().__init__()
        self.mu = nn.Parameter(torch.randn(num_components, latent_dim) * init_scale)
        self.logvar = nn.Parameter(torch.zeros(num_components, latent_dim))
        self.logits = nn.Parameter(torch.zeros(num_components))

    def component_means(self, encoder: nn.Module | None = None) -> torch.Tensor:
        return self.mu

    def forward(self, encoder: nn.Module | None = None) -> Distribution:
        return diagonal_gaussian_mixture(self.logits, self.mu, self.logvar)


class GTMPrior(nn.Module):
    """A fixed 2-D grid mapped by a small network to Gaussian components (Bishop et al., 1998)."""

    def __init__(
        self,
        latent_dim: int,
        grid_side: int = 4,
        grid_range: float = 1.0,
        hidden: int = 64,
        learnable_weights: bool = True,
        num_layers: int = 1,
    ):
        super().__init__()
        self.register_buffer("grid", square_grid(grid_side, grid_range))
        layers: list[nn.Module] = []
        for width in [2] + [hidden] * (num_layers - 1):  # num_layers hidden layers of `hidden` units
            layers += [nn.Linear(width, hidden), nn.LeakyReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(hidden, 2 * latent_dim))
        add_mixing_logits(self, grid_side**2, learnable_weights)

    def component_means(self, encoder: nn.Module | None = None) -> torch.Tensor:
        return self.net(self.grid).chunk(2, dim=-1)[0]

    def forward(self, encoder: nn.Module | None = None) -> Distribution:
        mu, logvar = self.net(self.grid).chunk(2, dim=-1)
        return diagonal_gaussian_mixture(self.logits, mu, logvar)
