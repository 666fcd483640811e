"""Flow priors: log p(z) = log N(f(z) | 0, I) + log|det df/dz|, f: data -> base, with the log-det
from autograd's Jacobian."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.priors import FLOWS, STATES, build
from torch import nn

pytestmark = pytest.mark.usefixtures("one_thread")


def flow_probe(name: str, latent_dim: int, state: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A flow, five points z, f(z), and log|det df/dz| from autograd's Jacobian, one per point."""
    prior, _ = build(name, state, latent_dim)
    # zuko's NormalizingFlow.log_prob does `z, ladj = transform.call_and_ladj(x)`: the transform
    # maps data to the base, and sample() goes through its inverse.
    transform = prior.flow.transform()
    torch.manual_seed(5)
    z = 1.5 * torch.randn(5, latent_dim, dtype=torch.float64)
    jacobians = torch.stack([torch.autograd.functional.jacobian(transform, point) for point in z])
    return prior, z, transform(z), torch.linalg.slogdet(jacobians).logabsdet


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("latent_dim", [2, 5])
@pytest.mark.parametrize("name", FLOWS)
def test_flow_log_det_equals_autograd_jacobian(name, latent_dim, state):
    prior, z, f_z, log_det = flow_probe(name, latent_dim, state)
    y, ladj = prior.flow.transform().call_and_ladj(z)
    assert ladj.shape == (5,)  # one log-det per example, not per dimension
    torch.testing.assert_close(y, f_z)
    torch.testing.assert_close(ladj, log_det, rtol=1e-9, atol=1e-9)
    assert log_det.abs().max() > 1e-3  # the flow is not the identity, so the check has teeth
    torch.testing.assert_close(prior.flow.transform().inv(y), z)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("latent_dim", [2, 5])
@pytest.mark.parametrize("name", FLOWS)
def test_flow_log_prob_is_change_of_variables(name, latent_dim, state):
    """log p(z) = log N(f(z) | 0, I) + log|det J_f(z)|, the log-det counted once per example."""
    prior, z, f_z, log_det = flow_probe(name, latent_dim, state)
    log_base = -0.5 * (f_z**2).sum(-1) - 0.5 * latent_dim * math.log(2 * math.pi)
    with torch.no_grad():
        torch.testing.assert_close(prior().log_prob(z), log_base + log_det, rtol=1e-9, atol=1e-9)
