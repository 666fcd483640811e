"""Priors that go through the encoder: mixtures of q(z | u_k) over pseudo-inputs u_k, either
learned directly (VampPrior) or made by a network from a fixed grid (GTM-VampPrior).

Reference: Tomczak & Welling, "VAE with a VampPrior", AISTATS 2018.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution

from vaelab.priors.base import add_mixing_logits, square_grid
from vaelab.priors.mixtures import diagonal_gaussian_mixture

__all__ = ["PSEUDO_INPUT_INITS", "GTMVampPrior", "VampPrior"]

PSEUDO_INPUT_INITS = ("random", "data")


class _EncoderMixture(nn.Module):
    """A mixture of q(z|u_k) over pseudo-inputs u_k; subclasses say how u is made."""

    def __init__(self, num_components: int, learnable_weights: bool):
        super().__init__()
        add_mixing_logits(self, num_components, learnable_weights)

    def pseudo_inputs(self) -> torch.Tensor:
        raise NotImplementedError

    def component_means(self, encoder: nn.Module) -> torch.Tensor:
        return encoder.gaussian_params(self.pseudo_inputs())[0]

    def forward(self, encoder: nn.Module | None = None) -> Distribution:
        if encoder is None:
            raise ValueError(f"{type(self).__name__} needs the encoder: call prior(encoder)")
        # Through the *current* encoder at every call, so u and the encoder get gradients.
        mu, logvar = encoder.gaussian_params(self.pseudo_inputs())
        return diagonal_gaussian_mixture(self.logits, mu, logvar)


class VampPrior(_EncoderMixture):
    """p(z) = sum_k w_k q(z | u_k) with K learnable pseudo-inputs u_k (Tomczak & Welling, 2018).

    The u_k are kept in the data range [input_min, input_max] by a hard-tanh, as in the paper.
    `init="random"` draws them from N(init_mean, init_std) in *fractions* of that range (the
    paper's N(0.05, 0.01) on [0, 1]); `init="data"` copies K training inputs (see
    `init_from_data`, called by `vaelab.build`; pixels at the bounds start 1% of the range inside,
    or their gradient would be zero). `learnable_inputs=False` (with `init="data"`)
    keeps those training inputs as they are, a buffer instead of a parameter: the paper's
    "VampPrior data" variant (`prior=vamp_data`).
    """

    DATA_MARGIN = 0.01  # learnable data-initialised u_k start this fraction of the range inside it

    def __init__(
        self,
        latent_dim: int,
        input_dim: int,
        num_components: int = 16,
        init: str = "random",
        init_mean: float = 0.5,
        init_std: float = 0.15,
        input_min: float = 0.0,
        input_max: float = 1.0,
        learnable_weights: bool = True,
        learnable_inputs: bool = True,
    ):
        super().__init__(num_components, learnable_weights)
        if not learnable_inputs and init != "data":
            raise ValueError(
                f"learnable_inputs=False keeps the pseudo-inputs fixed and needs init='data', got init={init!r}"
            )
        self.init, self.input_min, self.input_max = init, float(input_min), float(input_max)
        span = self.input_max - self.input_min
        u = self.input_min + span * (init_mean + init_std * torch.randn(num_components, input_dim))
        if learnable_inputs:
            self.u = nn.Parameter(u)
        else:
            self.register_buffer("u", u)  # still moved by .to() and saved in checkpoints

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """Copy K random rows of `x` (training inputs, data units) into the pseudo-inputs.

        Learnable ones start `DATA_MARGIN` of the range inside it: the hard-tanh passes no gradient
        at its bounds, where a binary image has every pixel, so a copied image would never move."""
        index = torch.randperm(x.shape[0])[: self.u.shape[0]]
        if len(index) < self.u.shape[0]:
            raise ValueError(f"prior.init=data needs at least {self.u.shape[0]} training inputs, got {len(index)}")
        u = x[index].reshape(self.u.shape).to(self.u)
        if isinstance(self.u, nn.Parameter):
            margin = self.DATA_MARGIN * (self.input_max - self.input_min)
            u = u.clamp(self.input_min + margin, self.input_max - margin)
        self.u.copy_(u)

    def pseudo_inputs(self) -> torch.Tensor:
        return nn.functional.hardtanh(self.u, self.input_min, self.input_max)


class GTMVampPrior(_EncoderMixture):
    """The grid is mapped by a network to pseudo-inputs, which go through the encoder."""

    def __init__(
        self,
        latent_dim: int,
        input_dim: int,
        grid_side: int = 4,
        grid_range: float = 1.0,
        hidden: int = 64,
        input_min: float = 0.0,
        input_max: float = 1.0,
        learnable_weights: bool = True,
    ):
        super().__init__(grid_side**2, learnable_weights)
        self.input_min, self.input_max = float(input_min), float(input_max)
        self.register_buffer("grid", square_grid(grid_side, grid_range))
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.LeakyReLU(), nn.Linear(hidden, input_dim))

    def pseudo_inputs(self) -> torch.Tensor:
        # A sigmoid maps the network's output into the data range [input_min, input_max].
        return self.input_min + (self.input_max - self.input_min) * torch.sigmoid(self.net(self.grid))
