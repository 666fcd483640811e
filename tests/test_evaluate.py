"""The evaluation as a specification: the IS estimate is exact with the exact posterior of a linear-
Gaussian VAE and a stochastic lower bound otherwise; the ELBO decompositions are identities; a prior
equal to the aggregated posterior has no holes; a trained run's numbers are reproducible."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import compose_config
from hydra.utils import instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.distributions import Categorical, Independent, MixtureSameFamily, MultivariateNormal, Normal

import vaelab
from vaelab.evaluation.exact import exact_log_likelihood
from vaelab.evaluation.likelihood import importance_sampled_log_likelihood, sample_averages
from vaelab.evaluation.metrics import evaluate, evaluate_model
from vaelab.evaluation.posterior import AggregatedPosterior
from vaelab.model import VAE

EVALUATE = [sys.executable, "-m", "vaelab.cli.evaluate"]
f64 = dict(dtype=torch.float64)


# -- probabilistic PCA: z ~ N(0, I), x | z ~ N(Wz + b, s^2 I), so log p(x) = log N(x | b, WW^T + s^2 I) --
class PPCA:
    def __init__(self, input_dim: int = 6, latent_dim: int = 3, noise: float = 0.5, num_inputs: int = 200):
        g = torch.Generator().manual_seed(0)
        self.W, self.b, self.s = (
            torch.randn(input_dim, latent_dim, generator=g, **f64),
            torch.randn(input_dim, generator=g, **f64),
            noise,
        )
        self.prior = Independent(Normal(torch.zeros(latent_dim, **f64), torch.ones(latent_dim, **f64)), 1)
        z = torch.randn(num_inputs, latent_dim, generator=g, **f64)
        self.x = z @ self.W.T + self.b + noise * torch.randn(num_inputs, input_dim, generator=g, **f64)
        marginal = MultivariateNormal(self.b, self.W @ self.W.T + noise**2 * torch.eye(input_dim, **f64))
        self.log_px = marginal.log_prob(self.x)
        # Exact posterior: N(C W^T (x - b) / s^2, C) with C = (I + W^T W / s^2)^-1.
        self.cov = torch.linalg.inv(torch.eye(latent_dim, **f64) + self.W.T @ self.W / noise**2)

    def posterior_mean(self, x):
        return (x - self.b) @ self.W @ self.cov / self.s**2

    def exact_posterior(self, x):
        return MultivariateNormal(self.posterior_mean(x), self.cov)

    def worse_posterior(self, x):
        """Diagonal, shifted by 0.5 and twice as wide: a proposal an amortised encoder might give."""
        return Independent(Normal(self.posterior_mean(x) + 0.5, 2 * self.cov.diagonal().sqrt()), 1)

    def decode(self, z):
        return Independent(Normal(z @ self.W.T + self.b, self.s), 1)


@pytest.mark.parametrize("num_samples", [1, 10, 100])
def test_is_estimate_with_the_exact_posterior_is_the_exact_likelihood(num_samples):
    ppca = PPCA()
    torch.manual_seed(0)
    # chunk_size 7 divides none of the S, so partial chunks are exercised too
    estimate = importance_sampled_log_likelihood(
        ppca.x, ppca.exact_posterior, ppca.decode, ppca.prior, num_samples, chunk_size=7
    )
    torch.testing.assert_close(estimate, ppca.log_px, atol=1e-4, rtol=0)


def test_is_estimate_with_a_worse_proposal_is_a_lower_bound_that_tightens_with_S():
    ppca = PPCA()
    torch.manual_seed(0)
    gaps = []
    for num_samples in (1, 10, 100, 1000):
        # log p(x) - estimate for 2 repetitions x 200 inputs
        gap = torch.stack(
            [
                ppca.log_px
                - importance_sampled_log_likelihood(
                    ppca.x, ppca.worse_posterior, ppca.decode, ppca.prior, num_samples, chunk_size=64
                )
                for _ in range(2)
            ]
        )
        standard_error = gap.std() / math.sqrt(gap.numel())
        assert gap.mean() > -3 * standard_error, f"S={num_samples}: estimate exceeds log p(x) on average"
        gaps.append(gap.mean().item())
    assert gaps == sorted(gaps, reverse=True), f"the gap should shrink as S grows: {gaps}"
    assert gaps[0] > 1.0 and gaps[-1] < 0.05


def test_is_estimate_is_at_least_the_elbo_of_the_same_samples_for_every_input():
    ppca = PPCA()
    torch.manual_seed(0)
    out = sample_averages(ppca.x, ppca.worse_posterior, ppca.decode, ppca.prior, num_samples=30, chunk_size=8)
    elbo = out["rec"] + out["log_pz"] - out["log_qzx"]
    assert (out["log_px"] >= elbo - 1e-12).all()  # log-mean-exp >= mean (Jensen)


def test_aggregated_posterior_is_the_uniform_mixture_of_the_encoders():
    g = torch.Generator().manual_seed(1)
    loc, scale = torch.randn(30, 4, generator=g, **f64), torch.rand(30, 4, generator=g, **f64) + 0.1
    q_z = AggregatedPosterior(loc, scale)
    mixture = MixtureSameFamily(Categorical(logits=torch.zeros(30, **f64)), Independent(Normal(loc, scale), 1))
    z = 2 * torch.randn(5, 7, 4, generator=g, **f64)
    torch.testing.assert_close(q_z.log_prob(z, chunk_size=8), mixture.log_prob(z))
    # law of total variance = the mixture's moments
    torch.testing.assert_close(q_z.mean, mixture.mean)
    torch.testing.assert_close(q_z.variance, mixture.variance)


def toy_encoder(x):
    """A fixed diagonal-Gaussian 'encoder' of 2-D inputs."""
    return Independent(Normal(x, 0.05 + 0.1 * x.abs()), 1)


def test_a_prior_equal_to_the_aggregated_posterior_has_no_holes():
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(2), **f64)
    q = toy_encoder(x)
    prior = MixtureSameFamily(Categorical(logits=torch.zeros(100, **f64)), Independent(Normal(q.mean, q.stddev), 1))
    decode = lambda z: Independent(Normal(z, 1.0), 1)
    torch.manual_seed(0)
    m = evaluate(x, toy_encoder, decode, prior, num_samples=50, chunk_size=20, num_latent_samples=20000)
    assert abs(m["test/reverse_kl"]) < 1e-6  # log p = log q at every sample
    assert m["test/hole_fraction"] == pytest.approx(0.01, abs=0.003)  # q's own 1st percentile
    assert m["test/marginal_kl"] == pytest.approx(0.0, abs=0.05)


def test_a_standard_prior_around_two_far_clusters_is_mostly_holes():
    x = torch.tensor([[3.0, 3.0], [-3.0, -3.0]], **f64).repeat(50, 1)
    prior = Independent(Normal(torch.zeros(2, **f64), torch.ones(2, **f64)), 1)
    decode = lambda z: Independent(Normal(z, 1.0), 1)
    torch.manual_seed(0)
    m = evaluate(x, lambda x: Independent(Normal(x, 0.3), 1), decode, prior, num_samples=10)
    assert m["test/hole_fraction"] > 0.9 and m["test/reverse_kl"] > 5
    assert m["test/hole_fraction_heldout"] > 0.9 and m["test/hole_rank"] < 0.05
    assert m["test/mutual_info"] == pytest.approx(math.log(2), abs=1e-3)  # z tells which of 2 clusters
    assert m["test/active_units"] == 2


# -- a trained model ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A short run on digits (5 epochs, S = 100 at the end): its directory and metrics."""
    run_dir = tmp_path_factory.mktemp("evaluate") / "run"
    overrides = ["trainer=fast", "trainer.max_epochs=5", "trainer.limit_train_batches=1.0", "figures.enabled=false"]
    cfg = compose_config(*overrides, "eval.num_samples=100", f"run_dir={run_dir}")
    metrics = vaelab.run(cfg)
    return run_dir, metrics, cfg


@pytest.fixture(scope="module")
def trained_model(trained_run):
    run_dir, metrics, cfg = trained_run
    datamodule = instantiate(cfg.dataset.datamodule)
    datamodule.setup("test")
    return VAE.load_from_checkpoint(run_dir / metrics["best_checkpoint"]), datamodule.splits["test"][0]


def test_a_run_reports_the_decomposition_and_its_identities_hold(trained_run):
    run_dir, metrics, cfg = trained_run
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


def test_a_run_logs_test_scalars_and_hparams_to_tensorboard(trained_run):
    events = EventAccumulator(str(trained_run[0] / "tensorboard"))
    events.Reload()
    assert {"test/nll", "test/mutual_info", "hp/test_nll", "hp/test_elbo", "hp/mutual_info", "hp/marginal_kl"} <= set(
        events.Tags()["scalars"]
    )
    assert {"test/nll_exact", "test/nll_exact_error", "hp/test_nll_exact"} <= set(events.Tags()["scalars"])
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")
    assert events.Scalars("test/nll")[-1].value == pytest.approx(trained_run[1]["test/nll"], rel=1e-6)


def test_is_estimate_on_a_trained_model_improves_with_S(trained_model):
    model, x = trained_model
    runs = {S: evaluate_model(model, x, seed=0, num_samples=S, chunk_size=50, exact=False) for S in (1, 10, 100)}
    nll = [runs[S]["test/nll"] for S in (1, 10, 100)]
    assert nll == sorted(nll, reverse=True) and nll[0] - nll[-1] > 0.5
    assert runs[1]["test/nll"] == pytest.approx(-runs[1]["test/elbo"])  # one sample: IS = ELBO
    assert all(-run["test/nll"] >= run["test/elbo"] for run in runs.values())


def test_a_run_at_latent_dim_2_reports_the_exact_likelihood_below_the_is_estimate(trained_run):
    m = json.loads((trained_run[0] / "metrics.json").read_text())
    print(f"exact NLL {m['test/nll_exact']:.3f} ± {m['test/nll_exact_error']:.1e}, IS (S=100) {m['test/nll']:.3f}")
    assert 0 <= m["test/nll_exact_error"] < 0.1 and m["exact"]["max_error"] >= m["test/nll_exact_error"]
    # S = 100: the IS NLL is above the exact one by its bias, a few tenths of a nat at most here
    assert 0 < m["test/nll"] - m["test/nll_exact"] + m["test/nll_exact_error"] < 1.0
    assert m["eval"]["exact"] == "auto" and m["exact"]["prior_tail_mass"] < 1e-4


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
    model, x = trained_model
    torch.manual_seed(123)
    first = evaluate_model(model, x[:50], seed=7, num_samples=10, chunk_size=4, num_latent_samples=500)
    after = torch.rand(3)
    torch.manual_seed(123)
    second = evaluate_model(model, x[:50], seed=7, num_samples=10, chunk_size=4, num_latent_samples=500)
    assert torch.equal(torch.rand(3), after)
    for run in (first, second):
        run["eval"].pop("seconds"), run["eval"].pop("exact_seconds")
    assert first == second and "test/nll_exact" in first


def test_a_large_S_is_drawn_in_chunks_and_agrees_with_one_chunk(trained_run, trained_model):
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
    assert m["test/nll"] == pytest.approx(trained_run[1]["test/nll"], abs=0.02)  # as S = 100 in one chunk


# -- vaelab-evaluate -------------------------------------------------------------------------------
def load_script():
    import vaelab.cli.evaluate

    return vaelab.cli.evaluate


@pytest.mark.slow
def test_script_reproduces_metrics_json_and_takes_overrides(trained_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run[0], run_dir)
    before = json.loads((run_dir / "metrics.json").read_text())
    evaluate = [*EVALUATE, str(run_dir)]
    subprocess.run(evaluate, check=True, capture_output=True, text=True)
    after = json.loads((run_dir / "metrics.json").read_text())
    for run in (before, after):
        run["eval"].pop("seconds"), run["eval"].pop("exact_seconds"), run["eval"].pop("quality_seconds")
    assert after == before  # same checkpoint, data and seed: the same numbers

    result = subprocess.run(
        [*evaluate, "eval.num_samples=10", "eval.exact=false"], check=True, capture_output=True, text=True
    )
    assert "S=10 importance samples" in result.stdout
    changed = json.loads((run_dir / "metrics.json").read_text())
    assert changed["eval"]["num_samples"] == 10 and changed["test/nll"] > before["test/nll"]

    # Any checkpoint, results to a file of one's choosing; metrics.json is left alone.
    last, out = run_dir / "checkpoints" / "last.ckpt", tmp_path / "last.json"
    subprocess.run(
        [*EVALUATE, str(last), "eval.num_samples=10", "eval.exact=false", "--json", str(out)],
        check=True,
        capture_output=True,
    )
    written = json.loads(out.read_text())
    assert written["checkpoint"] == str(last) and written["eval"]["num_samples"] == 10
    assert math.isfinite(written["test/nll"]) and json.loads((run_dir / "metrics.json").read_text()) == changed


@pytest.mark.parametrize(
    "path, message",
    [
        ("missing", "missing: no such run directory or checkpoint"),
        ("checkpoints", "checkpoints holds no vaelab run (no config.yaml)"),  # a directory that is not a run
        ("checkpoints/last.ckpt", "run holds no vaelab run (no config.yaml)"),  # config.yaml removed below
    ],
)
def test_script_names_the_missing_file(trained_run, tmp_path, capsys, path, message):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run[0], run_dir)
    (run_dir / "config.yaml").unlink()
    with pytest.raises(SystemExit):
        load_script().main([str(run_dir / path)])
    assert message in capsys.readouterr().err


def test_script_rejects_an_unknown_override(trained_run, capsys):
    with pytest.raises(SystemExit):
        load_script().main([str(trained_run[0]), "eval.num_sampels=10"])
    assert "eval.num_sampels is not in" in capsys.readouterr().err
