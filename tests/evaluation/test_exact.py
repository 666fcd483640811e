"""The quadrature log p(x) as a specification: on probabilistic PCA, where log p(x) is known in closed
form, it is exact whatever the encoder; its error bound covers its error on coarse grids; a grid that
misses the posterior's mass is far off and says so."""

from __future__ import annotations

import pytest
import torch
from helpers.ppca import PPCA
from torch.distributions import Independent, Normal

from vaelab.evaluation.exact import (
    exact_log_likelihood,
    log_likelihood_table,
    log_window,
    trapezoid_log_weights,
    unit_grid,
)
from vaelab.evaluation.metrics import evaluate
from vaelab.nets import MLPDecoder

f64 = dict(dtype=torch.float64)


def encoders(ppca: PPCA) -> dict:
    """The exact posterior, a worse diagonal one, and one whose box misses the posterior entirely
    (shifted by 1.5 and ten times too narrow), so the prior grid must carry all of the mass."""
    return {
        "exact": ppca.exact_posterior,
        "worse": ppca.worse_posterior,
        "far": lambda x: Independent(Normal(ppca.posterior_mean(x) + 1.5, 0.1 * ppca.cov.diagonal().sqrt()), 1),
    }


def quadrature(ppca: PPCA, encoder: str, **grids):
    prior_samples = ppca.prior.sample((10000,))
    return exact_log_likelihood(ppca.x, encoders(ppca)[encoder], ppca.decode, ppca.prior, prior_samples, **grids)


def test_trapezoid_weights_integrate_a_polynomial_on_the_unit_square():
    points, coarse = unit_grid(8, 2, **f64)
    f = 1 + points[:, 0] + points[:, 0] * points[:, 1]  # integral 1 + 1/2 + 1/4, exact for the trapezoid rule
    for log_w, mask in ((trapezoid_log_weights(8, 2), slice(None)), (trapezoid_log_weights(4, 2), coarse)):
        assert (f[mask] * log_w.exp()).sum().item() == pytest.approx(1.75, abs=1e-12)
    assert coarse.sum() == 25 and points[coarse][:, 0].unique().tolist() == [0, 0.25, 0.5, 0.75, 1]


def test_window_is_one_inside_zero_at_the_edge_and_in_between_elsewhere():
    t = torch.tensor([[0.0, 0.4], [0.5, -0.5], [1.0, 0.0], [0.75, 0.0], [0.9, 0.9], [3.0, 0.0]], **f64)
    phi = log_window(t).exp()
    assert phi[:2].tolist() == [1.0, 1.0] and phi[2] == 0 and phi[5] == 0
    assert phi[3] == pytest.approx(0.5) and 0 < phi[4] < phi[3]


@pytest.mark.parametrize("latent_dim", [1, 2])
@pytest.mark.parametrize("encoder", ["exact", "worse", "far"])
def test_quadrature_is_the_closed_form_log_likelihood_of_probabilistic_pca(latent_dim, encoder):
    ppca = PPCA(latent_dim=latent_dim)
    torch.manual_seed(0)
    out = quadrature(ppca, encoder, grid=32, prior_grid=128)
    error = (out["log_px"] - ppca.log_px).abs()
    assert error.max() < 1e-4, f"max |error| {error.max():.2e} nats"
    assert (error <= out["error"]).all(), "the reported bound must cover the actual error"
    assert out["error"].mean() < 1e-2


@pytest.mark.parametrize("latent_dim", [1, 2])
def test_the_error_bound_covers_the_error_of_coarse_grids(latent_dim):
    """Coarse grids that still resolve the posterior (the prior grid's spacing 0.18, twice it about
    the posterior's std): off by up to 0.03 nats, within the bound. (Coarser still, a grid can agree
    with its own half and the bound fails: the README states the rule.)"""
    ppca = PPCA(latent_dim=latent_dim)
    torch.manual_seed(0)
    for encoder in ("exact", "worse", "far"):
        out = quadrature(ppca, encoder, grid=8, prior_grid=64)
        error = (out["log_px"] - ppca.log_px).abs()
        assert encoder == "far" or error.max() > 1e-4, "the local grids should be coarse enough to be off"
        assert (error <= out["error"]).all(), f"{encoder}: bound {out['error'].min():.2e} < error {error.max():.2e}"


def test_a_grid_that_misses_the_posterior_is_far_off_and_says_so():
    """A fixed box around the wrong place: the prior grid's box taken from 'prior samples' near
    (4, 4) and local boxes away from the posterior. Off by nats, and the bound is infinite."""
    ppca = PPCA(latent_dim=2)
    far_samples = 4 + 0.1 * torch.randn(1000, 2, **f64)
    out = exact_log_likelihood(
        ppca.x, encoders(ppca)["far"], ppca.decode, ppca.prior, far_samples, grid=32, prior_grid=64
    )
    error = (out["log_px"] - ppca.log_px).abs()
    assert error.mean() > 1.0
    assert out["tail_mass"] > 0.99 and (out["error"] >= error).all()


def test_latent_dim_3_is_refused():
    ppca = PPCA(latent_dim=3)
    with pytest.raises(ValueError, match="latent_dim <= 2"):
        exact_log_likelihood(ppca.x, ppca.worse_posterior, ppca.decode, ppca.prior, torch.zeros(10, 3, **f64))


@pytest.mark.parametrize("grid", [3, 0, 1])
def test_an_odd_or_tiny_grid_is_refused(grid):
    ppca = PPCA(latent_dim=1)
    with pytest.raises(ValueError, match="even integer"):
        exact_log_likelihood(
            ppca.x, ppca.worse_posterior, ppca.decode, ppca.prior, torch.zeros(10, 1, **f64), grid=grid
        )


@pytest.mark.parametrize("likelihood", ["categorical", "bernoulli"])
def test_the_likelihood_table_by_matrix_product_is_the_broadcast_log_prob(likelihood):
    torch.manual_seed(0)
    decoder = MLPDecoder(latent_dim=2, output_dim=12, hidden=16, likelihood=likelihood, num_levels=5)
    levels = 5 if likelihood == "categorical" else 2
    x, z = torch.randint(0, levels, (7, 12)).float(), torch.randn(9, 2)
    table = log_likelihood_table(decoder, z, x)
    assert table.shape == (9, 7)
    torch.testing.assert_close(table, decoder(z[:, None, :]).log_prob(x))
    torch.testing.assert_close(table[3, 5], decoder(z[3]).log_prob(x[5]))


@pytest.mark.parametrize(
    ("latent_dim", "exact", "present"), [(2, "auto", True), (1, True, True), (2, False, False), (3, "auto", False)]
)
def test_evaluate_adds_the_exact_nll_when_asked_and_latent_dim_allows(latent_dim, exact, present):
    ppca = PPCA(latent_dim=latent_dim, num_inputs=40)
    torch.manual_seed(0)
    m = evaluate(
        ppca.x, ppca.worse_posterior, ppca.decode, ppca.prior, num_samples=10, num_latent_samples=2000, exact=exact
    )
    assert ("test/nll_exact" in m) == present and ("exact" in m) == present
    if present:
        assert m["test/nll_exact"] == pytest.approx(-ppca.log_px.mean().item(), abs=1e-4)
        assert m["test/nll"] > m["test/nll_exact"]  # S = 10 from a worse proposal: above, on average


def test_evaluate_refuses_exact_true_above_latent_dim_2():
    ppca = PPCA(latent_dim=3, num_inputs=10)
    with pytest.raises(ValueError, match="eval.exact=true needs latent_dim <= 2"):
        evaluate(
            ppca.x, ppca.worse_posterior, ppca.decode, ppca.prior, num_samples=2, num_latent_samples=100, exact=True
        )
