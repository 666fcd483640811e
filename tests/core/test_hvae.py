"""The two-level hierarchical VAE (model=hvae) as one VAE over the joint latent z = [z1, z2]: its
joint prior and posterior are normalised densities that their samples follow, the top level is any
prior, the importance-sampled likelihood approaches the quadrature from above at 1 + 1 latent
dimensions, and the run's evaluation, figures and checkpoints work on it."""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import CHEAP_EVAL, PRIORS, SHORT_RUN, compose_config
from torch.distributions import Independent, Normal

import vaelab
from vaelab.evaluation.exact import exact_log_likelihood
from vaelab.evaluation.likelihood import importance_sampled_log_likelihood
from vaelab.model import VAE
from vaelab.nets import GaussianNet, HierarchicalEncoder, JointPosterior, MLPEncoder
from vaelab.priors import HierarchicalPrior, MoGPrior

pytestmark = pytest.mark.usefixtures("one_thread")


def grid_moments(log_prob, low=-8.0, high=8.0, side=400):
    """Mass, mean and covariance of exp(log_prob) on a (side x side) grid of [low, high]^2."""
    axis = torch.linspace(low, high, side, dtype=torch.float64)
    points = torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        density = log_prob(points.float()).double().exp()
    cell = ((high - low) / (side - 1)) ** 2
    mass = density.sum() * cell
    weights = density / density.sum()
    mean = weights @ points
    centred = points - mean
    return mass.item(), mean, centred.T @ (weights[:, None] * centred)


def assert_samples_follow(samples: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> None:
    n = len(samples)
    samples = samples.double()
    standard_error = samples.std(0) / math.sqrt(n)
    assert ((samples.mean(0) - mean).abs() < 5 * standard_error).all(), (samples.mean(0), mean)
    assert torch.allclose(torch.cov(samples.T), cov, rtol=0.05, atol=0.01), (torch.cov(samples.T), cov)


def test_the_joint_prior_is_a_density_its_samples_follow():
    torch.manual_seed(0)
    prior = HierarchicalPrior(MoGPrior(latent_dim=1, num_components=3), bottom_dim=1, top_dim=1, hidden=16)
    joint = prior()
    mass, mean, cov = grid_moments(joint.log_prob)
    assert mass == pytest.approx(1.0, abs=0.01)
    assert_samples_follow(joint.sample((100_000,)), mean, cov)


def test_the_joint_posterior_is_a_density_its_samples_follow():
    torch.manual_seed(0)
    encoder = HierarchicalEncoder(MLPEncoder(4, 1, hidden=16), bottom_dim=1, input_dim=4, hidden=16)
    q = encoder(torch.rand(1, 4) * 3)
    mass, mean, cov = grid_moments(lambda z: q.log_prob(z[:, None, :])[:, 0])
    assert mass == pytest.approx(1.0, abs=0.01)
    assert_samples_follow(q.sample((100_000,))[:, 0], mean, cov)
    # its reported moments (the unscented transform for z1) are close to the density's
    assert torch.allclose(q.mean[0].double(), mean, atol=0.05)
    assert torch.allclose(q.variance[0].double(), cov.diagonal(), rtol=0.1)


def test_log_q_at_the_drawn_sample_reuses_its_lower_level_with_the_same_values_and_gradients():
    torch.manual_seed(0)
    encoder = HierarchicalEncoder(MLPEncoder(4, 2, hidden=16), bottom_dim=3, input_dim=4, hidden=16)
    passes = []
    encoder.bottom.register_forward_hook(lambda *_: passes.append(1))
    q = encoder(torch.rand(5, 4) * 3)
    z = q.rsample((7,))
    drawn = q.log_prob(z)
    assert len(passes) == 1  # q(z1|x, z2) of the draw, not a second pass
    fresh = q.log_prob(z.clone())  # another tensor: computed afresh
    assert len(passes) == 2 and torch.allclose(drawn, fresh)
    grads = [torch.autograd.grad(lp.sum(), list(encoder.parameters()), retain_graph=True) for lp in (drawn, fresh)]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads, strict=True))
    with torch.no_grad():
        sampled = q.sample((2,))
    assert q.log_prob(sampled).requires_grad  # drawn without gradients: recomputed with them


def test_the_posteriors_moments_are_exact_when_z1_depends_linearly_on_z2():
    top = Independent(Normal(torch.tensor([[0.5, -1.0]]), torch.tensor([[2.0, 0.5]])), 1)  # (1, L2=2)
    slope, offset = torch.tensor([[1.5, -0.5], [0.0, 2.0]]), torch.tensor([0.3, -0.2])  # z1 = A z2 + b + noise

    def bottom(z2):
        return Independent(Normal(z2 @ slope.T + offset, torch.tensor([0.4, 0.1]).expand(*z2.shape[:-1], 2)), 1)

    q = JointPosterior(top, bottom, 2)
    expected_mean = top.mean @ slope.T + offset
    expected_var = torch.tensor([0.4, 0.1]) ** 2 + (slope**2 @ top.variance[0])
    assert torch.allclose(q.mean, torch.cat([expected_mean, top.mean], -1), atol=1e-5)
    assert torch.allclose(q.variance, torch.cat([expected_var[None], top.variance], -1), atol=1e-5)


@pytest.fixture(scope="module")
def hvae_run(tmp_path_factory):
    """model=hvae with 1 + 1 latent dimensions and a VampPrior on z2, trained 10 whole epochs on the
    digits at lr 1e-2 (slower, both levels stay close to their priors and the IS estimate is tight
    already at S = 1), with a cheap evaluation (the test computes its own): (run directory, metrics)."""
    run_dir = tmp_path_factory.mktemp("hvae") / "run"
    cfg = compose_config(
        "model=hvae",
        "latent_dim=1",
        "model.bottom_dim=1",
        "model.hidden=64",
        "prior=vamp",
        "trainer=fast",
        "trainer.max_epochs=10",
        "trainer.limit_train_batches=1.0",
        "optimizer.lr=1e-2",
        "figures.enabled=false",
        *CHEAP_EVAL,
        f"run_dir={run_dir}",
    )
    return run_dir, vaelab.run(cfg)


@pytest.fixture(scope="module")
def short_hvae(tmp_path_factory):
    """A short model=hvae run (3 epochs of 4 batches) with 1 + 1 latent dimensions and a VampPrior."""
    run_dir = tmp_path_factory.mktemp("short_hvae") / "run"
    overrides = ("model=hvae", "latent_dim=1", "model.bottom_dim=1", "model.hidden=32", "prior=vamp", *SHORT_RUN)
    return run_dir, vaelab.run(compose_config(*overrides, f"run_dir={run_dir}"))


def test_an_hvae_run_reports_both_levels_and_its_checkpoint_loads(short_hvae):
    run_dir, metrics = short_hvae
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["test/kl"] == pytest.approx(m["test/kl_bottom"] + m["test/mutual_info"] + m["test/marginal_kl"], abs=0.05)
    assert m["test/nll"] <= -m["test/elbo"] and len(m["latent_stats"]["q_mean"]) == 1  # z2's statistics
    model = VAE.load_from_checkpoint(run_dir / m["best_checkpoint"])
    assert isinstance(model.encoder, HierarchicalEncoder) and isinstance(model.prior, HierarchicalPrior)
    assert model.prior.pseudo_inputs().shape[-1] == 64  # the top prior's, through the joint prior
    x = torch.rand(3, 64) * 16
    with torch.no_grad():
        z = model.encode(x).sample()
        assert torch.isfinite(model.prior_dist().log_prob(z) + model.decode(z).log_prob(x)).all()


@pytest.mark.slow  # S up to 1000, and the quadrature over (z1, z2), on 100 digits
def test_is_approaches_the_quadrature_from_above_as_s_grows(hvae_run):
    run_dir, metrics = hvae_run
    model = VAE.load_from_checkpoint(run_dir / metrics["best_checkpoint"]).eval()
    datamodule = vaelab.data.DigitsDataModule()
    datamodule.setup("test")
    x = datamodule.splits["test"][0][:100]
    torch.manual_seed(0)
    with torch.no_grad():
        prior = model.prior_dist()
        exact = exact_log_likelihood(x, model.encode, model.decode, prior, prior.sample((10000,)))
        bound = exact["error"].mean().item()
        gaps, errors = [], []
        for S in (1, 10, 100, 1000):
            gap = exact["log_px"] - importance_sampled_log_likelihood(x, model.encode, model.decode, prior, S)
            gaps.append(gap.mean().item()), errors.append((gap.std() / math.sqrt(len(gap))).item())
            assert gaps[-1] > -3 * errors[-1] - bound, f"S={S}: IS above the exact log p(x)"
    assert gaps[0] > gaps[1] > gaps[2] and gaps[0] > 0.3 and bound < 0.1, (gaps, bound)
    assert abs(gaps[3]) < 3 * errors[3] + bound, (gaps, errors, bound)


@pytest.mark.slow  # ten short runs
@pytest.mark.parametrize("prior", PRIORS)
def test_every_prior_is_the_top_of_an_hvae(tmp_path, prior):
    cfg = compose_config("model=hvae", f"prior={prior}", "model.hidden=32", *SHORT_RUN, f"run_dir={tmp_path / 'run'}")
    metrics = vaelab.run(cfg)
    assert math.isfinite(metrics["test/nll"]) and metrics["test/nll"] <= -metrics["test/elbo"] + 1e-6


@pytest.mark.slow  # a short run with convolutions
def test_an_hvae_with_convolutional_networks_and_pseudo_inputs_trains_and_draws(tmp_path):
    cfg = compose_config(
        "model=hvae",
        "encoder=conv",
        "decoder=conv",
        "prior=vamp",
        "encoder.channels=[8,8]",
        "encoder.kernels=[3,3]",
        "encoder.strides=[1,2]",
        "decoder.channels=[8]",
        "model.hidden=32",
        "trainer=fast",
        "figures.every_n_epochs=1",
        *CHEAP_EVAL,
        f"run_dir={tmp_path / 'run'}",
    )
    metrics = vaelab.run(cfg)
    assert math.isfinite(metrics["test/nll"])
    for name in ("latent", "samples", "reconstructions", "pseudo_inputs"):
        assert (tmp_path / "run" / f"{name}.png").is_file(), name


def test_a_post_hoc_prior_on_z2_keeps_the_rest_of_the_hvae(short_hvae, tmp_path):
    from vaelab.posthoc.fit import fit

    run_dir, _ = short_hvae
    record = fit(run_dir, "mog", ["prior.num_components=3"], out=tmp_path / "mog")
    before, after = record["before"], record["after"]
    # The same q(z1, z2|x), p(z1|z2) and evaluation seed: only log p(z2), z2's KL, can move.
    assert after["test/rec"] == before["test/rec"] and after["test/entropy"] == before["test/entropy"]
    change = before["test/cross_entropy"] - after["test/cross_entropy"]
    assert change != 0 and after["test/elbo"] - before["test/elbo"] == pytest.approx(change, abs=1e-9)
    source = torch.load(record["source_checkpoint"], map_location="cpu", weights_only=False)["state_dict"]
    metrics = json.loads((tmp_path / "mog" / "metrics.json").read_text())
    refit = torch.load(tmp_path / "mog" / metrics["best_checkpoint"], map_location="cpu", weights_only=False)
    kept = [k for k in source if k.startswith(("encoder.", "decoder.", "prior.conditional."))]
    assert any(k.startswith("prior.conditional.") for k in kept)
    assert all(torch.equal(source[k], refit["state_dict"][k]) for k in kept)
    assert all(k.startswith("prior.top.") for k in refit["state_dict"] if k not in kept)
    model = VAE.load_from_checkpoint(tmp_path / "mog" / metrics["best_checkpoint"], map_location="cpu")
    assert isinstance(model.prior, HierarchicalPrior) and isinstance(model.prior.top, MoGPrior)
    assert after["test/nll"] <= -after["test/elbo"] + 1e-6


def test_a_gaussian_net_clamps_its_log_variances():
    net = GaussianNet(2, 3, hidden=4, num_layers=1, activation="gated", logvar_min=-1.0, logvar_max=0.5)
    with torch.no_grad():
        for layer in net.modules():
            if isinstance(layer, torch.nn.Linear):
                layer.weight.fill_(50.0)
        scale = net(torch.ones(5, 2)).base_dist.scale
    assert torch.allclose(scale, torch.full_like(scale, math.exp(0.25)))
