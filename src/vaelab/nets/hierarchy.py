"""The two-level hierarchical VAE's encoder, q(z1, z2 | x) = q(z2|x) q(z1|x, z2) (Tomczak &
Welling's HVAE), as one Distribution over the joint latent z = [z1, z2].

With the joint latent, the VAE's ELBO, importance-sampled likelihood and exact quadrature apply
unchanged: log q(z|x) is the sum of the two levels' log-densities at a z drawn level by level. The
top level's q(z2|x) is any encoder of vaelab (`top`), so a prior on z2 that passes pseudo-inputs
through the encoder (`gaussian_params`) sees exactly q(z2|·); the prior over the joint is
`vaelab.priors.HierarchicalPrior`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal, constraints

from vaelab.nets.layers import GatedLinear, mlp

__all__ = ["GaussianNet", "HierarchicalEncoder", "JointPosterior", "top_level"]


def top_level(part: Distribution | nn.Module) -> Distribution | nn.Module:
    """The top level of a hierarchical model's joint q(z|x) or p(z), or of its encoder (z2's: the
    prior's own space, where q(z), the holes and the latent figures are taken, and post-hoc priors
    are fitted); a one-level model's is itself."""
    return getattr(part, "top", part)


class GaussianNet(nn.Module):
    """N(mu, diag(exp(logvar))) of its input, through `mlp` layers; log-variances clamped to
    [logvar_min, logvar_max] where given."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: int,
        num_layers: int,
        activation: str,
        logvar_min: float | None = None,
        logvar_max: float | None = None,
    ):
        super().__init__()
        self.net = mlp(in_features, hidden, num_layers, 2 * out_features, activation)
        self.logvar_min, self.logvar_max = logvar_min, logvar_max

    def forward(self, h: Tensor) -> Distribution:
        mu, logvar = self.net(h).chunk(2, dim=-1)
        if self.logvar_min is not None or self.logvar_max is not None:
            logvar = torch.clamp(logvar, self.logvar_min, self.logvar_max)
        return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)


class JointPosterior(Distribution):
    """q(z1, z2|x) = q(z2|x) q(z1|x, z2) over z = [z1, z2]: `top` is q(z2|x), `bottom(z2)` q(z1|x, z2)
    for z2 of shape (*sample, *batch, L2)."""

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, top: Distribution, bottom: Callable[[Tensor], Distribution], bottom_dim: int):
        self.top, self.bottom, self.bottom_dim = top, bottom, bottom_dim
        event = torch.Size([bottom_dim + top.event_shape[-1]])
        super().__init__(top.batch_shape, event, validate_args=False)
        # The last z drawn, its q(z1|x, z2) and whether that was built with gradients: log_prob at
        # that same z (the ELBO's and the importance sampling's) reuses it instead of a second
        # pass of the network.
        self.drawn: tuple[Tensor, Distribution, bool] | None = None

    def split(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z[..., : self.bottom_dim], z[..., self.bottom_dim :]

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        z2 = self.top.rsample(sample_shape)
        bottom = self.bottom(z2)
        z = torch.cat([bottom.rsample(), z2], dim=-1)
        self.drawn = (z, bottom, torch.is_grad_enabled())
        return z

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, z: Tensor) -> Tensor:
        z1, z2 = self.split(z)
        drawn, bottom = self.drawn, None
        if drawn is not None and drawn[0] is z and (drawn[2] or not torch.is_grad_enabled()):
            bottom = drawn[1]
        return self.top.log_prob(z2) + (self.bottom(z2) if bottom is None else bottom).log_prob(z1)

    def _sigma_points(self) -> tuple[Tensor, Tensor]:
        """q(z1|x, z2)'s means and variances at z2 = mean ± sqrt(L2) std along each axis (the
        unscented transform's points, equal weights), shape (2·L2, *batch, L1)."""
        mean, std = self.top.mean, self.top.stddev
        dim = mean.shape[-1]
        offsets = torch.cat([torch.eye(dim), -torch.eye(dim)]).to(mean) * dim**0.5  # (2·L2, L2)
        points = mean + offsets.reshape(-1, *([1] * (mean.dim() - 1)), dim) * std
        q1 = self.bottom(points)
        return q1.mean, q1.variance

    @property
    def mean(self) -> Tensor:
        """E[z]: z2's exactly, z1's by the unscented transform of q(z1|x, z2) over q(z2|x)."""
        means, _ = self._sigma_points()
        return torch.cat([means.mean(0), self.top.mean], dim=-1)

    @property
    def variance(self) -> Tensor:
        """Var[z] per dimension: z2's exactly, z1's by the law of total variance over the sigma points."""
        means, variances = self._sigma_points()
        return torch.cat([variances.mean(0) + means.var(0, unbiased=False), self.top.variance], dim=-1)


class HierarchicalEncoder(nn.Module):
    """q(z1, z2|x): `top` (any vaelab encoder) gives q(z2|x); q(z1|x, z2) is a Gaussian of one
    layer of `hidden` units for x and one for z2, concatenated, and `num_layers` more."""

    def __init__(
        self,
        top: nn.Module,
        bottom_dim: int,
        input_dim: int,
        hidden: int = 300,
        num_layers: int = 1,
        activation: str = "gated",
        input_scale: float = 1.0,
        logvar_min: float | None = None,
        logvar_max: float | None = None,
    ):
        super().__init__()
        self.top, self.bottom_dim = top, bottom_dim
        self.input_dim, self.latent_dim = input_dim, bottom_dim + top.latent_dim
        self.input_scale = float(input_scale)
        layer = GatedLinear if activation == "gated" else lambda i, o: nn.Sequential(nn.Linear(i, o), nn.LeakyReLU())
        self.from_x, self.from_z2 = layer(input_dim, hidden), layer(top.latent_dim, hidden)
        self.bottom = GaussianNet(2 * hidden, bottom_dim, hidden, num_layers, activation, logvar_min, logvar_max)

    def gaussian_params(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """q(z2|x)'s mean and log-variance: what a prior on z2 passes its pseudo-inputs through."""
        return self.top.gaussian_params(x)

    def forward(self, x: Tensor) -> JointPosterior:
        features = self.from_x(x / self.input_scale if self.input_scale != 1.0 else x)

        def bottom(z2: Tensor) -> Distribution:
            h = features.expand(*z2.shape[:-1], features.shape[-1])
            return self.bottom(torch.cat([h, self.from_z2(z2)], dim=-1))

        return JointPosterior(self.top(x), bottom, self.bottom_dim)
