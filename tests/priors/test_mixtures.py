"""A mixture prior's log-density is the formula written out by hand:
log p(z) = logsumexp_k [log w_k + sum_l log N(z_l | mu_kl, sigma_kl^2)], in float64 and float32."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.priors import LATENT_DIM, MIXTURES, STATES, build
from torch import nn

from vaelab.nets import MLPEncoder

pytestmark = pytest.mark.usefixtures("one_thread")


def mixture_params(name: str, prior: nn.Module, encoder: MLPEncoder) -> tuple[list, list, list]:
    """(logits, mu, logvar) of the mixture components, read from the module, as Python lists."""
    if name == "mog":
        mu, logvar = prior.mu, prior.logvar
    elif name == "gtm":
        mu, logvar = prior.net(prior.grid).chunk(2, dim=-1)
    else:  # vamp, gtm_vamp: q(z | u_k) through the encoder
        mu, logvar = encoder.gaussian_params(prior.pseudo_inputs())
    return prior.logits.tolist(), mu.tolist(), logvar.tolist()


def log_sum_exp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def log_normal(x: float, mu: float, logvar: float) -> float:
    """log N(x | mu, sigma^2) with sigma = exp(logvar / 2)."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (x - mu) ** 2 / math.exp(logvar))


def brute_force_log_prob(z: torch.Tensor, logits: list, mu: list, logvar: list) -> torch.Tensor:
    """The mixture density by explicit loops: sum over dimensions inside, logsumexp outside."""
    log_w = [a - log_sum_exp(logits) for a in logits]
    out = []
    for point in z.tolist():
        per_component = []
        for k in range(len(logits)):
            log_n = sum(log_normal(point[d], mu[k][d], logvar[k][d]) for d in range(len(point)))
            per_component.append(log_w[k] + log_n)
        out.append(log_sum_exp(per_component))
    return torch.tensor(out, dtype=torch.float64)


def logsumexp_per_dimension(z: torch.Tensor, logits: list, mu: list, logvar: list) -> torch.Tensor:
    """A known bug in public VAE code: logsumexp over components per dimension, then a sum."""
    log_w = [a - log_sum_exp(logits) for a in logits]
    out = []
    for point in z.tolist():
        per_dim = [
            log_sum_exp([log_w[k] + log_normal(point[d], mu[k][d], logvar[k][d]) for k in range(len(logits))])
            for d in range(len(point))
        ]
        out.append(sum(per_dim))
    return torch.tensor(out, dtype=torch.float64)


def probe_points() -> torch.Tensor:
    """Points near the mass and far in the tails, where one component dominates the logsumexp."""
    torch.manual_seed(4)
    return torch.cat(
        [
            2.0 * torch.randn(8, LATENT_DIM, dtype=torch.float64),
            8.0 * torch.randn(4, LATENT_DIM, dtype=torch.float64),
        ]
    )


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("name", MIXTURES)
def test_mixture_log_prob_equals_brute_force_formula(name, state):
    prior, encoder = build(name, state)
    z = probe_points()
    with torch.no_grad():
        expected = brute_force_log_prob(z, *mixture_params(name, prior, encoder))
        actual = prior(encoder).log_prob(z)
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", MIXTURES)
def test_mixture_log_prob_is_accurate_in_float32(name):
    """Training runs in float32: log_prob there stays within float32 round-off of the exact formula
    (evaluated in float64 with the same float32 parameters)."""
    prior, encoder = build(name, "trained")
    prior, encoder = prior.float(), encoder.float()
    z = probe_points().float()
    with torch.no_grad():
        expected = brute_force_log_prob(z, *mixture_params(name, prior, encoder))
        actual = prior(encoder).log_prob(z).double()
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", MIXTURES)
def test_brute_force_check_would_catch_logsumexp_per_dimension(name):
    """The previous test is sensitive: the per-dimension variant is a different function once the
    components differ (fresh vamp components are nearly identical, so the trained state is used)."""
    prior, encoder = build(name, "trained")
    z = probe_points()
    with torch.no_grad():
        wrong = logsumexp_per_dimension(z, *mixture_params(name, prior, encoder))
        actual = prior(encoder).log_prob(z)
    assert (wrong - actual).abs().max() > 0.1
