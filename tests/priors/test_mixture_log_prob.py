"""The fast mixture log-density (squared distances as matrix products) against torch's reference
(`MixtureSameFamily.log_prob`, a broadcast over components): the same values and gradients."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from vaelab.nets import MLPEncoder
from vaelab.priors import DiagonalGaussianMixture, VampPrior


def reference_log_prob(logits, mu, logvar, z):
    components = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    return MixtureSameFamily(Categorical(logits=logits), components).log_prob(z)


def mixture_params(num_components: int, latent_dim: int, dtype, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    mu = 2 * torch.randn(num_components, latent_dim, generator=generator, dtype=dtype)
    logvar = torch.empty(num_components, latent_dim, dtype=dtype).uniform_(-6, 2, generator=generator)
    logits = torch.randn(num_components, generator=generator, dtype=dtype)
    return logits, mu, logvar


@pytest.mark.parametrize("num_components, latent_dim", [(1, 1), (3, 2), (500, 40)])
@pytest.mark.parametrize("batch_shape", [(100,), (7, 5)])
def test_fast_log_prob_equals_reference_in_double_precision(num_components, latent_dim, batch_shape):
    logits, mu, logvar = mixture_params(num_components, latent_dim, torch.float64)
    z = 1.5 * torch.randn(*batch_shape, latent_dim, dtype=torch.float64)
    fast = DiagonalGaussianMixture(logits, mu, logvar).log_prob(z)
    assert fast.shape == batch_shape
    torch.testing.assert_close(fast, reference_log_prob(logits, mu, logvar, z), rtol=0, atol=1e-5)


def test_fast_log_prob_has_the_reference_gradients():
    params = [p.requires_grad_() for p in mixture_params(500, 40, torch.float64)]
    z = torch.randn(100, 40, dtype=torch.float64, requires_grad=True)
    inputs = [*params, z]
    fast = torch.autograd.grad(DiagonalGaussianMixture(*params).log_prob(z).sum(), inputs)
    reference = torch.autograd.grad(reference_log_prob(*params, z).sum(), inputs)
    for name, got, want in zip(["logits", "mu", "logvar", "z"], fast, reference):
        torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-5, msg=lambda m: f"d/d{name}: {m}")  # noqa: B023


def test_fast_log_prob_matches_in_single_precision_at_typical_scale():
    """float32, values of a trained VampPrior's size: agrees to 1e-5 relative (the reference
    itself is no more exact than that in float32)."""
    logits, mu, logvar = mixture_params(500, 40, torch.float32)
    z = 1.5 * torch.randn(1000, 40)
    exact = reference_log_prob(logits.double(), mu.double(), logvar.double(), z.double())
    fast = DiagonalGaussianMixture(logits, mu, logvar).log_prob(z).double()
    torch.testing.assert_close(fast, exact, rtol=1e-5, atol=1e-4)


def test_vamp_prior_uses_the_fast_density_and_samples_from_the_mixture():
    torch.manual_seed(0)
    encoder = MLPEncoder(input_dim=784, latent_dim=40, hidden=300, activation="gated", logvar_min=-6, logvar_max=2)
    prior = VampPrior(latent_dim=40, input_dim=784, num_components=500, init_mean=0.05, init_std=0.01)
    dist = prior(encoder)
    assert isinstance(dist, DiagonalGaussianMixture)
    z = dist.sample((64,))
    assert z.shape == (64, 40)
    with torch.no_grad():
        torch.testing.assert_close(dist.log_prob(z), MixtureSameFamily.log_prob(dist, z), rtol=1e-5, atol=1e-4)


def test_a_batch_of_mixtures_falls_back_to_the_reference():
    logits, mu, logvar = mixture_params(3, 2, torch.float64)
    batched = [t.expand(4, *t.shape) for t in (logits, mu, logvar)]
    z = torch.randn(4, 2, dtype=torch.float64)
    torch.testing.assert_close(DiagonalGaussianMixture(*batched).log_prob(z), reference_log_prob(*batched, z))
