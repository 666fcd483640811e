"""The energy-reweighted prior: its normaliser's estimate matches a quadrature within its stated
error, the training bound is below the density and approaches it as its pool grows, a peaked energy
cannot buy likelihood in training, importance resampling approaches the density as its pool grows, the noise-contrastive
classifier turns the base into the aggregated posterior, and NCP is a post-hoc fit only."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import SHORT_RUN, compose_config
from torch.distributions import Independent, Normal

import vaelab
from vaelab.errors import ConfigError
from vaelab.priors import EnergyPrior

pytestmark = pytest.mark.usefixtures("one_thread")

AXIS = torch.linspace(-8, 8, 641, dtype=torch.float64)
GRID = torch.cartesian_prod(AXIS, AXIS)
CELL = float((AXIS[1] - AXIS[0]) ** 2)


def shaped_prior(resample_from: int = 100) -> EnergyPrior:
    """A random energy large enough to move the mass of N(0, I) well away."""
    torch.manual_seed(0)
    prior = EnergyPrior(2, hidden=16, num_layers=1, resample_from=resample_from, eval_samples=200_000).double()
    with torch.no_grad():  # a rough energy, a few nats across the base's mass
        prior.net[0].weight.mul_(3.0)
        torch.nn.init.normal_(prior.net[-1].weight, std=0.2)
    return prior.eval()


def quadrature(prior: EnergyPrior) -> tuple[float, torch.Tensor]:
    """(log Z, the normalised density on GRID) by quadrature."""
    with torch.no_grad():
        log_unnormalised = Independent(Normal(torch.zeros(2).double(), 1.0), 1).log_prob(GRID) - prior.net(
            GRID
        ).squeeze(-1)
    log_z = (log_unnormalised.logsumexp(0) + math.log(CELL)).item()
    return log_z, (log_unnormalised - log_z).exp()


def test_the_normaliser_matches_a_quadrature_within_its_stated_error():
    prior = shaped_prior()
    exact, _ = quadrature(prior)
    dist = prior()
    assert abs(exact) > 0.3, exact  # the energy does reweight the base
    assert float(dist.log_z) == pytest.approx(exact, abs=4 * float(dist.log_z_stderr) + 1e-4)
    assert dist.exact_log_prob is False and "200000 base samples" in dist.log_prob_estimator
    assert torch.equal(prior().log_z, dist.log_z)  # eval mode: the same seeded estimate every time


def test_the_training_bound_approaches_the_density_as_the_pool_grows():
    prior = shaped_prior()
    log_z, density = quadrature(prior)
    z = GRID[density.multinomial(200, replacement=True, generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        exact = Independent(Normal(torch.zeros(2).double(), 1.0), 1).log_prob(z) - prior.net(z).squeeze(-1) - log_z
        gaps = []
        for pool in (4, 64, 4096):
            prior.train().num_samples = pool
            torch.manual_seed(1)
            bound = torch.stack([prior().log_prob(z) for _ in range(50)]).mean(0)  # E over the pool, per z
            gaps.append((exact - bound).mean().abs().item())
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.005, gaps


def test_the_training_bound_is_below_the_density_that_resampling_draws_from():
    """Resampling one of K + 1 base samples by exp(-E) draws from b(z) E[(K + 1) w(z) / (w(z) + S)],
    w = exp(-E), S the sum of K other weights: a density (it integrates to 1), whose samples the
    sampler's agree with, and whose log the training bound is below, on average over the pool."""
    pool = 4
    prior = shaped_prior(resample_from=pool + 1)
    axis = torch.linspace(-8, 8, 129, dtype=torch.float64)
    grid, cell = torch.cartesian_prod(axis, axis), float((axis[1] - axis[0]) ** 2)
    base = Independent(Normal(torch.zeros(2).double(), 1.0), 1)
    torch.manual_seed(0)
    with torch.no_grad():
        w = (-prior.net(grid).squeeze(-1)).exp()
        others = (-prior.net(base.sample((20_000, pool))).squeeze(-1)).exp().sum(-1)  # S, one per pool
        ratio = torch.cat([((pool + 1) / (part[:, None] + others)).mean(-1) for part in w.split(4096)])
        density = base.log_prob(grid).exp() * w * ratio
        mean = (density[:, None] * grid).sum(0) * cell
        samples = prior().sample((40_000,))
        prior.train().num_samples = pool
        z = grid[density.multinomial(200, replacement=True, generator=torch.Generator().manual_seed(0))]
        bound = torch.stack([prior().log_prob(z) for _ in range(500)]).mean(0)
        index = torch.cdist(z, grid).argmin(-1)
    assert float(density.sum() * cell) == pytest.approx(1.0, abs=5e-3)
    assert (samples.mean(0) - mean).norm() < 0.03, (samples.mean(0), mean)
    gap = density[index].log() - bound
    assert gap.min() > -0.02 and gap.mean() > 0.01, gap


class Peak(torch.nn.Module):
    """E(z) = -200 within 0.05 of (3, 3), where N(0, I)'s samples all but never land; 0 elsewhere."""

    def __init__(self):
        super().__init__()
        self.depth = torch.nn.Parameter(torch.tensor(200.0))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return -self.depth * ((z - 3.0).square().sum(-1, keepdim=True) < 0.05**2).to(z)


def test_a_peaked_energy_gains_at_most_the_log_of_the_pool_size_in_training():
    torch.manual_seed(0)
    prior = EnergyPrior(2, num_samples=1024)
    prior.net = Peak()
    z = torch.full((1, 2), 3.0)
    base = Independent(Normal(torch.zeros(2), 1.0), 1).log_prob(z)
    dist = prior.train()()
    assert float(base - prior.net(z).squeeze(-1) - dist.log_z) > float(base) + 150  # the pool alone: +200 nats
    assert float(dist.log_prob(z)) <= float(base) + math.log(1025) + 1e-4


def test_importance_resampling_approaches_the_density_as_its_pool_grows():
    _, density = quadrature(shaped_prior())
    mean = (density[:, None] * GRID).sum(0) * CELL
    errors = []
    for pool in (2, 20, 500):
        torch.manual_seed(1)
        samples = shaped_prior(resample_from=pool)().sample((20_000,))
        errors.append((samples.mean(0) - mean).norm().item())
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.03, errors


def test_the_contrastive_classifier_turns_the_base_into_the_aggregated_posterior():
    torch.manual_seed(0)
    prior = EnergyPrior(2, hidden=32, objective="ncp", eval_samples=50_000)
    target = Independent(Normal(torch.tensor([1.0, -0.5]), torch.tensor([0.5, 0.8])), 1)
    optimizer = torch.optim.Adam(prior.parameters(), lr=1e-2)
    for _ in range(400):
        optimizer.zero_grad()
        prior.contrastive_loss(target.sample((256,))).backward()
        optimizer.step()
    p = prior.eval()()
    z = target.sample((2000,))
    with torch.no_grad():
        gap = (target.log_prob(z) - p.log_prob(z)).mean()  # KL(target || p) by Monte Carlo
        before = (target.log_prob(z) - Independent(Normal(torch.zeros(2), 1.0), 1).log_prob(z)).mean()
    assert before > 0.8 and gap < 0.1, (before, gap)


def test_ncp_is_a_post_hoc_fit_and_fits_after_training(tmp_path):
    with pytest.raises(ConfigError, match=r"^prior.objective=ncp is not allowed in training: .*posthoc=energy_ncp$"):
        vaelab.run(compose_config(*SHORT_RUN, "prior=energy_ncp", f"run_dir={tmp_path / 'refused'}"))
    assert not (tmp_path / "refused").exists()
    from vaelab.posthoc.fit import fit

    vaelab.run(compose_config(*SHORT_RUN, f"run_dir={tmp_path / 'run'}"))
    record = fit(tmp_path / "run", "energy_ncp", ["trainer.max_epochs=2"], out=tmp_path / "ncp")
    assert record["after"]["test/rec"] == record["before"]["test/rec"]
    metrics = (tmp_path / "ncp" / "metrics.json").read_text()
    assert '"prior/exact_log_prob": false' in metrics
