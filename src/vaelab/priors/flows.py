"""Normalizing-flow priors from zuko: a bijection of a standard normal with an exact density.

RealNVP couples halves of z (latent_dim >= 2); MAF and NSF are autoregressive, the
"autoregressive prior" of the blog post, and take any latent_dim >= 1 (zuko makes a single
feature an element-wise transform with learned parameters).
"""

from __future__ import annotations

from torch import nn
from torch.distributions import Distribution

__all__ = ["FlowPrior", "MAFPrior", "NSFPrior"]


class FlowPrior(nn.Module):
    """A RealNVP flow (Dinh et al., 2017) with a standard normal base, from zuko.

    zuko's coupling layers alternate which half of z is transformed and return one
    log|det J| per example, so the density is exact.
    """

    def __init__(self, latent_dim: int, num_layers: int = 3, hidden: int = 256):
        super().__init__()
        import zuko  # here, not at the top: importing it takes a second

        self.flow = zuko.flows.RealNVP(features=latent_dim, transforms=num_layers, hidden_features=(hidden, hidden))

    def forward(self, encoder: nn.Module | None = None) -> Distribution:
        return self.flow()


class MAFPrior(nn.Module):
    """A masked autoregressive flow (Papamakarios et al., 2017) with a standard normal base, from zuko:
    `num_layers` affine autoregressive transforms, each a masked MLP with two hidden layers of
    `hidden` units; the order of the features is reversed from one transform to the next.

    log p(z) needs one pass per transform; sampling inverts them, latent_dim passes each.
    """

    def __init__(self, latent_dim: int, num_layers: int = 3, hidden: int = 256):
        super().__init__()
        import zuko  # here, not at the top: importing it takes a second

        self.flow = zuko.flows.MAF(features=latent_dim, transforms=num_layers, hidden_features=(hidden, hidden))

    def forward(self, encoder: nn.Module | None = None) -> Distribution:
        return self.flow()


class NSFPrior(nn.Module):
    """A neural spline flow (Durkan et al., 2019) with a standard normal base, from zuko: MAF's
    structure with monotonic rational-quadratic splines of `bins` bins on [-5, 5] (the identity
    outside) in place of the affine maps."""

    def __init__(self, latent_dim: int, num_layers: int = 3, hidden: int = 256, bins: int = 8):
        super().__init__()
        import zuko  # here, not at the top: importing it takes a second

        self.flow = zuko.flows.NSF(
            features=latent_dim, transforms=num_layers, hidden_features=(hidden, hidden), bins=bins
        )

    def forward(self, encoder: nn.Module | None = None) -> Distribution:
        return self.flow()
