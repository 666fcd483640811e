"""The six priors p(z). Each is an nn.Module whose forward() builds a torch Distribution.

Parameters live in the module (so `.to()`, optimisers and checkpoints see them); the
Distribution is rebuilt on every call and never cached. Priors that go through the encoder
(vamp, gtm_vamp) take it as the argument of forward(); the others ignore it.

Reference: J. M. Tomczak, "Priors in VAEs" (blog post) and Tomczak & Welling, "VAE with a
VampPrior", AISTATS 2018.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal

# No argument checks in every Distribution built (a pass over each parameter tensor, several per step):
# zuko switched them off for the whole process when imported here, and vaelab imports zuko only for
# the flow now. A non-finite loss is caught by the training step, with the last finite metrics.
Distribution.set_default_validate_args(False)

PSEUDO_INPUT_INITS = ("random", "data")


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
    `init_from_data`, called by `vaelab.build`).
    """

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
    ):
        super().__init__(num_components, learnable_weights)
        self.init, self.input_min, self.input_max = init, float(input_min), float(input_max)
        span = self.input_max - self.input_min
        u = self.input_min + span * (init_mean + init_std * torch.randn(num_components, input_dim))
        self.u = nn.Parameter(u)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """Copy K random rows of `x` (training inputs, data units) into the pseudo-inputs."""
        index = torch.randperm(x.shape[0])[: self.u.shape[0]]
        if len(index) < self.u.shape[0]:
            raise ValueError(f"prior.init=data needs at least {self.u.shape[0]} training inputs, got {len(index)}")
        self.u.copy_(x[index].reshape(self.u.shape).to(self.u))

    def pseudo_inputs(self) -> torch.Tensor:
        return nn.functional.hardtanh(self.u, self.input_min, self.input_max)


class GTMPrior(nn.Module):
    """A fixed 2-D grid mapped by a small network to Gaussian components (Bishop et al., 1998)."""

    def __init__(
        self,
        latent_dim: int,
        grid_side: int = 4,
        grid_range: float = 1.0,
        hidden: int = 64,
        learnable_weights: bool = True,
    ):
        super().__init__()
        self.register_buffer("grid", square_grid(grid_side, grid_range))
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.LeakyReLU(), nn.Linear(hidden, 2 * latent_dim))
        add_mixing_logits(self, grid_side**2, learnable_weights)

    def component_means(self, encoder: nn.Module | None = None) -> torch.Tensor:
        return self.net(self.grid).chunk(2, dim=-1)[0]

    def forward(self, encoder: nn.Module | None = None) -> Distribution:
        mu, logvar = self.net(self.grid).chunk(2, dim=-1)
        return diagonal_gaussian_mixture(self.logits, mu, logvar)


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

