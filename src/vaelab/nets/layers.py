"""Building blocks of the encoders and decoders."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "GatedLinear", "mlp"]

ACTIVATIONS = ("leaky_relu", "gated")


class GatedLinear(nn.Module):
    """h * sigmoid(g): the gated layer of the VampPrior paper (Tomczak & Welling, 2018)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.h = nn.Linear(in_features, out_features)
        self.g = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.h(x) * torch.sigmoid(self.g(x))


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
