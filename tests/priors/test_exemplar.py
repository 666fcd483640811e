"""The exemplar prior: a normalised density that its samples follow, a leave-one-out log-density
equal to a direct computation, all exemplars outside training and a subset inside, and exemplars
that survive a checkpoint."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Independent, Normal

from vaelab.priors import ExemplarMixture, ExemplarPrior


class MeanEncoder(nn.Module):
    """gaussian_params(x) = (x @ W, 0): exemplar means that a test can compute by hand."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight)

    def gaussian_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = x @ self.weight
        return mu, torch.zeros_like(mu)


def digits_like(n: int, dim: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 17, (n, dim), generator=torch.Generator().manual_seed(seed)).float()


def prior_with(x: torch.Tensor, latent_dim: int = 2, **kwargs) -> tuple[ExemplarPrior, MeanEncoder]:
    torch.manual_seed(0)
    prior = ExemplarPrior(latent_dim, x.shape[1], init_log_sigma=-0.5, **kwargs)
    prior.init_from_data(x)
    return prior, MeanEncoder(torch.randn(x.shape[1], latent_dim) * 0.2)


def test_the_density_integrates_to_one_and_its_samples_follow_it():
    prior, encoder = prior_with(digits_like(40))
    p = prior.eval()(encoder)
    axis = torch.linspace(-12, 12, 481, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        density = p.log_prob(grid.float()).double().exp()
    cell = (axis[1] - axis[0]) ** 2
    assert (density.sum() * cell).item() == pytest.approx(1.0, abs=2e-3)
    mean = (density[:, None] * grid).sum(0) * cell
    samples = p.sample((200_000,)).double()
    assert torch.allclose(samples.mean(0), mean, atol=5 * samples.std(0).max().item() / math.sqrt(200_000))
    assert torch.allclose(samples.mean(0), p.mean.double(), atol=0.02)
    assert torch.allclose(samples.var(0), p.variance.double(), rtol=0.02)


def test_the_leave_one_out_log_density_equals_a_direct_computation():
    x = digits_like(8)
    x[5] = x[1]  # a duplicate of the first batch example: left out with it
    prior, encoder = prior_with(x, num_exemplars=None)
    batch = x[[1, 3, 6]]
    prior.train().leave_out(batch)
    z = torch.randn(4, 3, 2)
    with torch.no_grad():
        got = prior(encoder).log_prob(z)
        mu, sigma = encoder.gaussian_params(x)[0], math.exp(-0.5)
        own = [{1, 5}, {3}, {6}]
        for b in range(3):
            keep = [n for n in range(8) if n not in own[b]]
            components = Independent(Normal(mu[keep], sigma), 1)
            direct = components.log_prob(z[:, b, None, :]).logsumexp(-1) - math.log(len(keep))
            assert torch.allclose(got[:, b], direct, atol=1e-5), b
        prior.eval()  # outside training: every exemplar, nothing left out
        everything = Independent(Normal(mu, sigma), 1).log_prob(z[..., None, :]).logsumexp(-1) - math.log(8)
        assert torch.allclose(prior(encoder).log_prob(z), everything, atol=1e-5)


def test_training_draws_num_exemplars_at_each_step_and_gradients_reach_the_encoder_and_sigma():
    prior, encoder = prior_with(digits_like(50), num_exemplars=7)
    prior.train().leave_out(None)
    first, second = prior(encoder), prior(encoder)
    assert first.mu.shape == (7, 2) and not torch.equal(first.mu, second.mu)
    first.log_prob(torch.randn(3, 2)).sum().backward()
    assert encoder.weight.grad is not None and prior.log_sigma.grad is not None
    assert prior.eval()(encoder).mu.shape == (50, 2)


def test_the_exemplars_survive_a_state_dict_as_uint8_and_continuous_data_stay_float():
    x = digits_like(30)
    prior, encoder = prior_with(x)
    assert prior.exemplars.dtype == torch.uint8 and torch.equal(prior.exemplars.float(), x)
    fresh = ExemplarPrior(2, x.shape[1])
    fresh.load_state_dict(prior.state_dict())
    z = torch.randn(5, 2)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(encoder).log_prob(z), prior.eval()(encoder).log_prob(z))
    assert torch.equal(fresh.hashes, prior.hashes)
    continuous, _ = prior_with(torch.rand(10, 6))
    assert continuous.exemplars.dtype == torch.float32


def test_a_prior_without_exemplars_or_with_another_init_says_so():
    with pytest.raises(ValueError, match="init=data"):
        ExemplarPrior(2, 6, init="random")
    with pytest.raises(ValueError, match="no exemplars"):
        ExemplarPrior(2, 6)(MeanEncoder(torch.zeros(6, 2)))


def test_the_mixture_blocks_give_the_unblocked_log_density(monkeypatch):
    torch.manual_seed(1)
    mu, log_sigma, z = torch.randn(50, 3), torch.tensor(-0.3), torch.randn(6, 4, 3)
    whole = ExemplarMixture(mu, log_sigma).log_prob(z)
    monkeypatch.setattr("vaelab.priors.exemplar.BLOCK", 7)
    assert torch.allclose(ExemplarMixture(mu, log_sigma).log_prob(z), whole, atol=1e-5)
