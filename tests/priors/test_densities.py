"""Every prior is a Distribution over R^latent_dim: its density integrates to one, its samples
follow its density, and it gives one finite log-density per example, whatever the batch shape.
Each check runs on the priors of `helpers.priors`, freshly initialised and trained."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from helpers import PRIORS
from helpers.priors import FLOWS, LARS_SHORT, LATENT_DIM, MAX_STANDARD_ERRORS, STATES, build

pytestmark = pytest.mark.usefixtures("one_thread")
NUM_SAMPLES = 100_000
GRID_SIDE = 400


@dataclass
class Gridded:
    """100k samples of a 2-D prior and its density on a grid of cells that covers them."""

    samples: torch.Tensor  # (NUM_SAMPLES, 2)
    centres: torch.Tensor  # (GRID_SIDE**2, 2), the midpoints of the cells
    density: torch.Tensor  # (GRID_SIDE**2,), p(centre)
    cell_area: float
    log_z_stderr: float = 0.0  # lars: the Monte Carlo standard error of its normaliser's log
    approximate_samples: bool = False  # the energy prior's, by importance resampling from its base


def on_grid(dist, log_prob=None) -> Gridded:
    """Samples of `dist` and `log_prob` (default: dist's) on a grid around them."""
    log_prob = log_prob or dist.log_prob
    with torch.no_grad():
        torch.manual_seed(2)
        samples = dist.sample((NUM_SAMPLES,))
        # The samples' range plus a quarter of it on each side holds all but a negligible mass.
        low, high = samples.min(0).values, samples.max(0).values
        margin = 0.25 * (high - low)
        low, high = low - margin, high + margin
        step = (high - low) / GRID_SIDE
        axes = [low[d] + step[d] * (torch.arange(GRID_SIDE, dtype=torch.float64) + 0.5) for d in range(2)]
        centres = torch.cartesian_prod(*axes)
        density = torch.cat([log_prob(chunk).exp() for chunk in centres.split(20_000)])
    stderr = getattr(dist, "log_z_stderr", None)
    return Gridded(samples, centres, density, float(step.prod()), 0.0 if stderr is None else float(stderr))


# The flows' grids are the slowest to compute (their log-densities are also checked exactly, against
# the change of variables, in test_flows.py): those run with the slow tests.
GRIDDED = [
    pytest.param((p, s), id=f"{p}-{s}", marks=[pytest.mark.slow] if p in FLOWS else [])
    for p in [*PRIORS, LARS_SHORT]
    for s in STATES
]


@pytest.fixture(scope="module", params=GRIDDED)
def gridded(request) -> Gridded:
    prior, encoder = build(*request.param)
    prior.eval()  # lars: Z from its large evaluation sample; the other priors do not depend on the mode
    gridded = on_grid(prior(encoder))
    gridded.approximate_samples = request.param == ("energy", "trained")  # fresh: p is nearly its base
    return gridded


def mass(gridded: Gridded) -> float:
    return float(gridded.density.sum()) * gridded.cell_area


def test_density_integrates_to_one(gridded):
    """Within the grid's error (0.01), plus, for lars, MAX_STANDARD_ERRORS of its estimate of log Z:
    the mass is about Z / Z_estimate (1 - alpha_T) + alpha_T."""
    assert mass(gridded) == pytest.approx(1.0, abs=0.01 + MAX_STANDARD_ERRORS * gridded.log_z_stderr)


def test_sample_mean_and_covariance_match_the_density(gridded):
    """Monte Carlo moments of 100k samples equal the moments of p(z) integrated on the grid,
    within MAX_STANDARD_ERRORS of the Monte Carlo error (so a wrong variance in sample() or in
    log_prob() shows up, e.g. sigma = exp(logvar) instead of exp(logvar / 2))."""
    if gridded.approximate_samples:
        pytest.skip("importance resampling approaches the density as its pool grows: test_energy.py measures it")
    z, n = gridded.samples, gridded.samples.shape[0]
    weights = gridded.density / gridded.density.sum()  # normalisation is the previous test's job
    grid_mean = weights @ gridded.centres
    centred = gridded.centres - grid_mean
    grid_cov = centred.T @ (weights[:, None] * centred)

    sample_mean = z.mean(0)
    mean_error = z.std(0) / math.sqrt(n)
    assert torch.all((sample_mean - grid_mean).abs() < MAX_STANDARD_ERRORS * mean_error), (sample_mean, grid_mean)

    products = (z - sample_mean)[:, :, None] * (z - sample_mean)[:, None, :]  # (n, 2, 2)
    sample_cov = products.mean(0)
    cov_error = products.std(0) / math.sqrt(n)
    assert torch.all((sample_cov - grid_cov).abs() < MAX_STANDARD_ERRORS * cov_error), (sample_cov, grid_cov)


def test_lars_checks_would_catch_a_wrong_truncation_term():
    """The two tests above have teeth for lars: at T = 3, alpha_T is far above their tolerances, so
    dropping its term from the density (mass 1 - alpha_T), or using the untruncated density
    pi(z) a(z) / Z (mass 1, wrong shape), fails them."""
    prior, _ = build(LARS_SHORT, "trained")
    dist = prior.eval()()
    alpha = float((1 - dist.normaliser.detach()) ** (dist.truncation - 1))
    assert alpha > 0.1
    log_pi = dist.proposal.log_prob
    without_alpha = on_grid(
        dist, lambda z: log_pi(z) + torch.log1p(-torch.tensor(alpha)) + dist.log_acceptance(z) - dist.log_z
    )
    assert abs(mass(without_alpha) - 1) > 0.01 + MAX_STANDARD_ERRORS * without_alpha.log_z_stderr
    untruncated = on_grid(dist, lambda z: log_pi(z) + dist.log_acceptance(z) - dist.log_z)
    assert mass(untruncated) == pytest.approx(1.0, abs=0.01)
    with pytest.raises(AssertionError):
        test_sample_mean_and_covariance_match_the_density(untruncated)


@pytest.mark.parametrize("name", ["maf", "nsf", "lars", "mog"])
def test_one_dimensional_latent_space(name):
    """latent_dim 1: RealNVP cannot couple halves (config.py refuses it), these can; the density
    still integrates to one on a 1-D grid and samples have the shape (n, 1)."""
    prior, encoder = build(name, "trained", latent_dim=1)
    dist = prior.eval()(encoder)
    with torch.no_grad():
        assert dist.sample((5,)).shape == (5, 1)
        grid = torch.linspace(-15, 15, 30_001, dtype=torch.float64)[:, None]
        mass = float(dist.log_prob(grid).exp().sum()) * 30 / 30_000
    stderr = float(getattr(dist, "log_z_stderr", None) or 0.0)
    assert mass == pytest.approx(1.0, abs=1e-3 + MAX_STANDARD_ERRORS * stderr)


@pytest.mark.parametrize("name", PRIORS)
def test_sample_is_vectorised(name):
    """sample((n,)) returns (n, latent_dim) and calls the networks as often for n = 1000 as for n = 1."""
    prior, encoder = build(name, "fresh")
    calls = []
    hooks = [m.register_forward_hook(lambda *_: calls.append(1)) for m in [*prior.modules(), *encoder.modules()]]
    try:
        dist = prior(encoder)
        calls.clear()
        assert dist.sample((1,)).shape == (1, LATENT_DIM)
        calls_for_one = len(calls)
        calls.clear()
        assert dist.sample((1000,)).shape == (1000, LATENT_DIM)
        if name == "lars":  # one acceptance pass per round of rejection sampling, at most T - 1 rounds
            assert len(calls) <= (prior.truncation - 1) * len(list(prior.net.modules()))
        else:
            assert len(calls) == calls_for_one
    finally:
        for hook in hooks:
            hook.remove()
    assert dist.sample((3, 5)).shape == (3, 5, LATENT_DIM)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("name", PRIORS)
def test_log_prob_is_one_finite_value_per_example(name, state):
    prior, encoder = build(name, state)
    torch.manual_seed(3)
    z = torch.cat(
        [torch.randn(5, LATENT_DIM, dtype=torch.float64), torch.full((2, LATENT_DIM), 20.0, dtype=torch.float64)]
    )
    z[-1] *= -1
    log_p = prior(encoder).log_prob(z)
    assert log_p.shape == (7,)
    assert torch.isfinite(log_p).all()
    assert prior(encoder).log_prob(z[:6].reshape(2, 3, LATENT_DIM)).shape == (2, 3)
