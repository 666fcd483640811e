"""What every prior shares: small helpers for building mixtures."""

from __future__ import annotations

import torch
from torch import nn


def add_mixing_logits(module: nn.Module, num_components: int, learnable: bool) -> None:
    """`module.logits`: uniform mixing weights, a parameter if learnable, else a fixed buffer."""
    logits = torch.zeros(num_components)
    if learnable:
        module.logits = nn.Parameter(logits)
    else:
        module.register_buffer("logits", logits)


def square_grid(side: int, half_range: float) -> torch.Tensor:
    """side**2 points of a regular grid over [-half_range, half_range]^2, shape (side**2, 2)."""
    axis = torch.linspace(-half_range, half_range, side)
    return torch.cartesian_prod(axis, axis)
