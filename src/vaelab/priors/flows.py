"""Normalizing-flow priors from zuko: a bijection of a standard normal with an exact density."""

from __future__ import annotations

import zuko
from torch import nn
from torch.distributions import Distribution


class FlowPrior(nn.Module):
    """A RealNVP flow (Dinh et al., 2017) with a standard normal base, from zuko.

    zuko's coupling layers alternate which half of z is transformed and return one
    log|det J| per example, so the density is exact.
    """

    def __init__(self, latent_dim: int, num_layers: int = 3, hidden: int = 256):
        super().__init__()
        self.flow = zuko.flows.RealNVP(features=latent_dim, transforms=num_layers, hidden_features=(hidden, hidden))

    def forward(self, encoder: nn.Module | None = None) -> Distribution:
        return self.flow()
