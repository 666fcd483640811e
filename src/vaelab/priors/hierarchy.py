"""The two-level hierarchical VAE's prior over z = [z1, z2]: p(z1, z2) = p(z2) p(z1|z2), with any
prior of vaelab, or a user's own, as p(z2) (`top`) and a learnt Gaussian p(z1|z2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, constraints

from vaelab.nets.hierarchy import GaussianNet

__all__ = ["HierarchicalPrior", "JointPrior"]

# What the figures and the model's set-up ask of a prior (`vaelab.priors.base.Prior`): the top
# prior's, where it has them.
# What a Distribution may say about its log-density (`vaelab.priors.base.Prior`): the top prior's.
REPORTED = ("log_z_stderr", "exact_log_prob", "log_prob_estimator")
DELEGATED = ("pseudo_inputs", "input_min", "input_max", "init_from_data", "component_means", "leave_out")


class JointPrior(Distribution):
    """p(z2) p(z1|z2) over z = [z1, z2]: `top` is p(z2), `conditional(z2)` p(z1|z2)."""

    arg_constraints: dict = {}
    support = constraints.real_vector

    def __init__(self, top: Distribution, conditional: Callable[[Tensor], Distribution], bottom_dim: int):
        self.top, self.conditional, self.bottom_dim = top, conditional, bottom_dim
        self.has_rsample = top.has_rsample
        super().__init__(top.batch_shape, torch.Size([bottom_dim + top.event_shape[-1]]), validate_args=False)

    def __getattr__(self, name: str) -> Any:
        # What the evaluation reports of an estimated log-density is the top prior's, read when asked
        # (an importance-sampled prior counts the points it has seen).
        if name in REPORTED and "top" in self.__dict__:
            return getattr(self.top, name)
        raise AttributeError(name)

    def log_prob(self, z: Tensor) -> Tensor:
        z1, z2 = z[..., : self.bottom_dim], z[..., self.bottom_dim :]
        return self.top.log_prob(z2) + self.conditional(z2).log_prob(z1)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        z2 = self.top.rsample(sample_shape)
        return torch.cat([self.conditional(z2).rsample(), z2], dim=-1)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        with torch.no_grad():
            z2 = self.top.sample(sample_shape)
            return torch.cat([self.conditional(z2).sample(), z2], dim=-1)


class HierarchicalPrior(nn.Module):
    """p(z1, z2) = p(z2) p(z1|z2): `top` is the prior on z2 (built by Hydra from the `prior` group),
    p(z1|z2) a Gaussian of `num_layers` layers of `hidden` units."""

    def __init__(
        self,
        top: nn.Module,
        bottom_dim: int,
        top_dim: int,
        hidden: int = 300,
        num_layers: int = 2,
        activation: str = "gated",
        logvar_min: float | None = None,
        logvar_max: float | None = None,
    ):
        super().__init__()
        self.top, self.bottom_dim, self.latent_dim = top, bottom_dim, bottom_dim + top_dim
        self.conditional = GaussianNet(top_dim, bottom_dim, hidden, num_layers, activation, logvar_min, logvar_max)

    def forward(self, encoder: nn.Module | None = None) -> JointPrior:
        # A prior on z2 that goes through the encoder goes through q(z2|x), the top encoder.
        return JointPrior(self.top(getattr(encoder, "top", encoder)), self.conditional, self.bottom_dim)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name in DELEGATED:
                return getattr(super().__getattr__("top"), name)
            raise
