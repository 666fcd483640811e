"""Every prior in two states, for the tests of their maths: freshly initialised, and after 50 Adam
steps that fit two Gaussian blobs (see `build`), so that means, variances and weights have left
their initial values. Everything is seeded, so every test sees the same numbers."""

from __future__ import annotations

import copy

import torch
from torch import nn

from helpers import PRIORS
from vaelab.nets import MLPEncoder
from vaelab.priors import (
    EnergyPrior,
    ExemplarPrior,
    FlowPrior,
    GTMPrior,
    GTMVampPrior,
    LatentVAEPrior,
    MAFPrior,
    MoGPrior,
    NSFPrior,
    ResampledPrior,
    StandardPrior,
    VampPrior,
)  # fmt: skip

LATENT_DIM = 2
INPUT_DIM, INPUT_MAX = 64, 16.0  # the digits: 64 pixels with values in 0..16
STATES = ["fresh", "trained"]
MIXTURES = ["mog", "vamp", "gtm", "gtm_vamp", "vamp_data"]
FLOWS = ["flow", "maf", "nsf"]
# LARS truncated after 3 proposals: the alpha_T = (1 - Z)^(T-1) term of its density is large here.
LARS_SHORT = "lars_truncated_at_3"
MAX_STANDARD_ERRORS = 5.0  # a fixed seed makes this deterministic; 5 SE is never luck


def make_prior(name: str, latent_dim: int = LATENT_DIM, **kwargs) -> nn.Module:
    """The prior with its default sizes (the hidden widths of the flows cut to 64, of lars, energy and
    latent_vae to 32, to keep tests fast)."""
    data_range = dict(input_dim=INPUT_DIM, input_min=0.0, input_max=INPUT_MAX)
    if name == "standard":
        return StandardPrior(latent_dim)
    if name == "mog":
        return MoGPrior(latent_dim, **kwargs)
    if name == "vamp":
        return VampPrior(latent_dim, **data_range, **kwargs)
    if name == "gtm":
        return GTMPrior(latent_dim, **kwargs)
    if name == "gtm_vamp":
        return GTMVampPrior(latent_dim, **data_range, **kwargs)
    if name == "flow":
        return FlowPrior(latent_dim, hidden=64, **kwargs)
    if name == "maf":
        return MAFPrior(latent_dim, hidden=64, **kwargs)
    if name == "nsf":
        return NSFPrior(latent_dim, hidden=64, **kwargs)
    if name == "lars":
        return ResampledPrior(latent_dim, hidden=32, **kwargs)
    if name == LARS_SHORT:
        return ResampledPrior(latent_dim, hidden=32, truncation=3, **kwargs)
    if name == "vamp_data":  # K of the inputs `trained` fits, kept as they are
        prior = VampPrior(latent_dim, **data_range, init="data", learnable_inputs=False, **kwargs)
        prior.init_from_data(images_of(blobs(latent_dim)))
        return prior
    if name == "energy":  # resampled from pools of 10 (its own tests measure larger ones)
        return EnergyPrior(latent_dim, hidden=32, resample_from=10, **kwargs)
    if name == "latent_vae":  # 10 importance samples in eval mode: p(z), not its log, is unbiased
        return LatentVAEPrior(latent_dim, hidden=32, eval_samples=10, **kwargs)
    if name == "exemplar":  # the inputs `trained` fits, all of them exemplars
        prior = ExemplarPrior(latent_dim, INPUT_DIM, **kwargs)
        prior.init_from_data(images_of(blobs(latent_dim)))
        return prior
    raise ValueError(f"unknown prior {name!r}; expected one of {PRIORS}")


def make_encoder(latent_dim: int = LATENT_DIM) -> MLPEncoder:
    return MLPEncoder(INPUT_DIM, latent_dim, hidden=32, input_scale=INPUT_MAX)


def blobs(latent_dim: int, n: int = 512) -> torch.Tensor:
    """Two shifted Gaussian blobs of different widths: a target no prior fits at init."""
    generator = torch.Generator().manual_seed(1)
    shift = torch.linspace(-1.0, 1.0, latent_dim, dtype=torch.float64)
    centres, widths = [1.5 + shift, -1.5 + shift.flip(0)], [0.3, 0.6]
    noise = [torch.randn(n // 2, latent_dim, generator=generator, dtype=torch.float64) for _ in centres]
    return torch.cat([c + w * e for c, w, e in zip(centres, widths, noise)])


def images_of(z: torch.Tensor) -> torch.Tensor:
    """Inputs in 0..16 that a fixed linear map 'decodes' from latent points z."""
    weight = torch.randn(z.shape[-1], INPUT_DIM, generator=torch.Generator().manual_seed(2), dtype=z.dtype)
    return (8.0 + 3.0 * z @ weight).clamp(0.0, INPUT_MAX)


_BUILT: dict[tuple[str, str, int], tuple[nn.Module, MLPEncoder, torch.Tensor]] = {}


def build(name: str, state: str, latent_dim: int = LATENT_DIM) -> tuple[nn.Module, MLPEncoder]:
    """A seeded prior and encoder in float64.

    `trained` takes 50 Adam steps of what VAE training does to them: the encoder learns to map
    images of the blob points back to the points, and the prior learns the points. Without the
    encoder's part, q(z | u_k) of a fresh encoder is nearly the same Gaussian for every u_k and
    the vamp mixtures would stay a single bump.

    Each is built once: later calls get a copy, and the random stream as the first build left it,
    so every caller sees what a fresh build would give.
    """
    key = (name, state, latent_dim)
    if key not in _BUILT:
        torch.manual_seed(0)
        prior, encoder = make_prior(name, latent_dim).double(), make_encoder(latent_dim).double()
        if state == "trained":
            z = blobs(latent_dim)
            x = images_of(z)
            optimizer = torch.optim.Adam([*prior.parameters(), *encoder.parameters()], lr=1e-2)
            for _ in range(50):
                optimizer.zero_grad()
                (-encoder(x).log_prob(z).mean() - prior(encoder).log_prob(z).mean()).backward()
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        _BUILT[key] = (prior, encoder, torch.get_rng_state())
    prior, encoder, random_state = _BUILT[key]
    torch.set_rng_state(random_state)
    return copy.deepcopy(prior), copy.deepcopy(encoder)
