"""What a prior learns: the gradient of log p(z) reaches every parameter (and the encoder, for the
priors that go through it); fixed mixture weights are a buffer."""

from __future__ import annotations

import pytest
import torch
from helpers import PRIORS
from helpers.priors import LATENT_DIM, build, make_prior

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", PRIORS)
def test_gradients_reach_every_parameter(name):
    prior, encoder = build(name, "fresh")
    params = dict(prior.named_parameters())
    if name == "standard":
        assert params == {}  # N(0, I) has nothing to learn
        return
    torch.manual_seed(6)
    prior(encoder).log_prob(2.0 * torch.randn(64, LATENT_DIM, dtype=torch.float64)).mean().backward()
    if name in ("vamp", "gtm_vamp", "vamp_data"):  # these go through the encoder, which must learn from p(z) too
        params |= {f"encoder.{k}": v for k, v in encoder.named_parameters()}
    if name == "vamp":
        assert "u" in params
    if name == "vamp_data":  # training inputs, kept as they are
        assert "u" not in params and "u" in dict(prior.named_buffers())
    for key, param in params.items():
        assert param.requires_grad
        assert param.grad is not None, key
        assert param.grad.abs().sum() > 0, key


@pytest.mark.parametrize("name", ["vamp", "gtm", "gtm_vamp"])
def test_fixed_weights_are_a_buffer_not_a_parameter(name):
    prior = make_prior(name, learnable_weights=False)
    assert "logits" not in dict(prior.named_parameters())
    assert "logits" in dict(prior.named_buffers())  # still moved by .to() and saved in checkpoints
    assert "logits" in dict(make_prior(name).named_parameters())
