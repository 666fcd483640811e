"""The evaluation of a trained model (the shared short digits run, `digits_run`): the ELBO
decompositions are identities, the IS estimate improves with S and approaches the exact likelihood
from above, the numbers are seeded and reproducible, and a large S is drawn in chunks."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hydra.utils import instantiate

from vaelab.evaluation.exact import exact_log_likelihood
from vaelab.evaluation.likelihood import importance_sampled_log_likelihood
from vaelab.evaluation.metrics import evaluate_model
from vaelab.model import VAE


@pytest.fixture(scope="module")
def trained_model(digits_run):
    run_dir, metrics, cfg = digits_run
    datamodule = instantiate(cfg.dataset.datamodule)
    datamodule.setup("test")
    return VAE.load_from_checkpoint(run_dir / metrics["best_checkpoint"]), datamodule.splits["test"][0]


def test_a_run_reports_the_decomposition_and_its_identities_hold(digits_run):
    run_dir, metrics, cfg = digits_run
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m == json.loads(json.dumps(metrics))  # what run() returns is what it wrote
    assert m["test/elbo"] == pytest.approx(m["test/rec"] - m["test/kl"], abs=1e-4)
    assert m["test/kl"] == pytest.approx(m["test/cross_entropy"] - m["test/entropy"], abs=1e-4)
    assert m["test/kl"] == pytest.approx(m["test/mutual_info"] + m["test/marginal_kl"], abs=1e-4)
    assert 0 <= m["test/mutual_info"] <= math.log(m["eval"]["num_inputs"])
    assert m["test/marginal_kl"] > -0.05  # >= 0 up to Monte-Carlo error
    assert -m["test/nll"] >= m["test/elbo"]  # per input, on the same samples: log-mean-exp >= mean
    assert m["test/bpd"] == pytest.approx(m["test/nll"] / (64 * math.log(2)))
    assert 0 <= m["test/hole_fraction"] <= 1 and m["test/reverse_kl"] >= -0.05
    assert 0 <= m["test/hole_fraction_heldout"] <= 1 and 0 <= m["test/hole_rank"] <= 1
    stats = m["latent_stats"]
    assert all(len(stats[key]) == cfg.latent_dim for key in ("q_mean", "q_var", "prior_mean", "prior_var", "activity"))
    assert stats["prior_mean"] == [0.0, 0.0] and stats["prior_var"] == [1.0, 1.0]
    assert all(var >= act for var, act in zip(stats["q_var"], stats["activity"]))
    assert m["test/active_units"] == sum(a > 0.01 for a in stats["activity"])


def test_is_estimate_on_a_trained_model_improves_with_S(trained_model):
    model, x = trained_model
    runs = {S: evaluate_model(model, x, seed=0, num_samples=S, chunk_size=50, exact=False) for S in (1, 10, 100)}
    nll = [runs[S]["test/nll"] for S in (1, 10, 100)]
    assert nll == sorted(nll, reverse=True) and nll[0] - nll[-1] > 0.5
    assert runs[1]["test/nll"] == pytest.approx(-runs[1]["test/elbo"])  # one sample: IS = ELBO
    assert all(-run["test/nll"] >= run["test/elbo"] for run in runs.values())


def test_a_run_at_latent_dim_2_reports_the_exact_likelihood_below_the_is_estimate(digits_run):
    m = json.loads((digits_run[0] / "metrics.json").read_text())
    print(f"exact NLL {m['test/nll_exact']:.3f} ± {m['test/nll_exact_error']:.1e}, IS (S=100) {m['test/nll']:.3f}")
    assert 0 <= m["test/nll_exact_error"] < 0.1 and m["exact"]["max_error"] >= m["test/nll_exact_error"]
    # S = 100: the IS NLL is above the exact one by its bias, a few tenths of a nat at most here
    assert 0 < m["test/nll"] - m["test/nll_exact"] + m["test/nll_exact_error"] < 1.0
    assert m["eval"]["exact"] == "auto" and m["exact"]["prior_tail_mass"] < 1e-4


@pytest.mark.slow  # S up to 1000, and the quadrature, on 150 digits
def test_is_estimate_approaches_the_exact_likelihood_from_above_as_S_grows(trained_model):
    """Per example, gap = IS NLL - exact NLL. On average it is never below zero beyond Monte-Carlo
    error and the quadrature's bound, it shrinks as S grows, and at S = 1000 it is zero within them."""
    model, x = trained_model
    x, prior = x[:150], model.prior_dist()
    torch.manual_seed(0)
    with torch.no_grad():
        exact = exact_log_likelihood(x, model.encode, model.decode, prior, prior.sample((10000,)))
        bound = exact["error"].mean().item()
        gaps, errors = [], []
        for S in (1, 10, 100, 1000):
            gap = exact["log_px"] - importance_sampled_log_likelihood(x, model.encode, model.decode, prior, S)
            standard_error = (gap.std() / math.sqrt(len(gap))).item()
            assert gap.mean() > -3 * standard_error - bound, f"S={S}: IS above the exact log p(x)"
            gaps.append(gap.mean().item()), errors.append(standard_error)
    assert gaps[0] > gaps[1] > gaps[2] and gaps[0] > 0.5 and bound < 0.1, gaps
    assert abs(gaps[3]) < 3 * errors[3] + bound, f"S=1000: IS - exact = {gaps[3]:.4f} ± {errors[3]:.4f}"
    print(
        f"IS NLL - exact NLL for S = 1, 10, 100, 1000: {[round(g, 4) for g in gaps]} ± {[round(e, 4) for e in errors]}"
    )


def test_evaluation_is_seeded_and_leaves_the_global_random_stream_alone(trained_model):
    """In chunks of 4 (the quadrature's too: small grids keep its chunks few; their size does not
    matter to the seeding)."""
    model, x = trained_model
    settings = dict(num_samples=10, chunk_size=4, num_latent_samples=500, exact_grid=8, exact_prior_grid=16)
    torch.manual_seed(123)
    first = evaluate_model(model, x[:50], seed=7, **settings)
    after = torch.rand(3)
    torch.manual_seed(123)
    second = evaluate_model(model, x[:50], seed=7, **settings)
    assert torch.equal(torch.rand(3), after)
    for run in (first, second):
        run["eval"].pop("seconds"), run["eval"].pop("exact_seconds")
    assert first == second and "test/nll_exact" in first


@pytest.mark.slow  # S = 520 on the whole test set
def test_a_large_S_is_drawn_in_chunks_and_agrees_with_one_chunk(digits_run, trained_model):
    model, x = trained_model
    shapes = []
    decode = model.decode
    model.decode = lambda z: shapes.append(tuple(z.shape)) or decode(z)  # record what the decoder sees
    try:
        m = evaluate_model(model, x, seed=0, num_samples=520, chunk_size=50, exact=False)
    finally:
        del model.decode
    assert shapes == [(50, len(x), 2)] * 10 + [(20, len(x), 2)]  # memory holds 50 x N latent points
    assert m["test/nll"] < -m["test/elbo"]  # the importance-sampled bound is tighter than the ELBO
    assert m["test/nll"] == pytest.approx(digits_run[1]["test/nll"], abs=0.02)  # as S = 100 in one chunk
