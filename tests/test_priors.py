"""Every prior, checked against the maths it promises.

Every prior is a Distribution over R^latent_dim, so its density must integrate to one, its
samples must follow its density, and a mixture's log-density must equal the formula written out
by hand. Each check runs on two states of each prior: freshly initialised, and after 50 Adam steps
that fit two Gaussian blobs (see `build`), so that means, variances and weights have left their
initial values. Everything is seeded, so every run sees the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import hydra
import pytest
import torch
from conftest import PRIORS, compose_config
from torch import nn

from vaelab.config import check_config
from vaelab.errors import ConfigError
from vaelab.nets import MLPEncoder
from vaelab.priors import (
    FlowPrior,
    GTMPrior,
    GTMVampPrior,
    MAFPrior,
    MoGPrior,
    NSFPrior,
    Prior,
    ResampledPrior,
    StandardPrior,
    VampPrior,
)  # fmt: skip

LATENT_DIM = 2
INPUT_DIM, INPUT_MAX = 64, 16.0  # the digits: 64 pixels with values in 0..16
STATES = ["fresh", "trained"]
MIXTURES = ["mog", "vamp", "gtm", "gtm_vamp", "vamp_data"]
FLOWS = ["flow", "maf", "nsf"]
# LARS truncated after 3 proposals: the alpha_T = (1 - Z)^(T-1) term of its density is large here.
LARS_SHORT = "lars_truncated_at_3"
NUM_SAMPLES = 100_000
GRID_SIDE = 400
MAX_STANDARD_ERRORS = 5.0  # a fixed seed makes this deterministic; 5 SE is never luck


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tensors here are small: one thread is faster, and does not stall on busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_prior(name: str, latent_dim: int = LATENT_DIM, **kwargs) -> nn.Module:
    """The prior with its default sizes (the hidden widths of the flows cut to 64, of lars to 32, to keep tests fast)."""
    data_range = dict(input_dim=INPUT_DIM, input_min=0.0, input_max=INPUT_MAX)
    if name == "standard":
        return StandardPrior(latent_dim)
    if name == "mog":
        return MoGPrior(latent_dim, **kwargs)
    if name == "vamp":
        return VampPrior(latent_dim, **data_range, **kwargs)
    if name == "gtm":
        return GTMPrior(latent_dim, **kwargs)
    if name == "gtm_vamp":
        return GTMVampPrior(latent_dim, **data_range, **kwargs)
    if name == "flow":
        return FlowPrior(latent_dim, hidden=64, **kwargs)
    if name == "maf":
        return MAFPrior(latent_dim, hidden=64, **kwargs)
    if name == "nsf":
        return NSFPrior(latent_dim, hidden=64, **kwargs)
    if name == "lars":
        return ResampledPrior(latent_dim, hidden=32, **kwargs)
    if name == LARS_SHORT:
        return ResampledPrior(latent_dim, hidden=32, truncation=3, **kwargs)
    if name == "vamp_data":  # K of the inputs `trained` fits, kept as they are
        prior = VampPrior(latent_dim, **data_range, init="data", learnable_inputs=False, **kwargs)
        prior.init_from_data(images_of(blobs(latent_dim)))
        return prior
    raise ValueError(f"unknown prior {name!r}; expected one of {PRIORS}")


def make_encoder(latent_dim: int = LATENT_DIM) -> MLPEncoder:
    return MLPEncoder(INPUT_DIM, latent_dim, hidden=32, input_scale=INPUT_MAX)


def blobs(latent_dim: int, n: int = 512) -> torch.Tensor:
    """Two shifted Gaussian blobs of different widths: a target no prior fits at init."""
    generator = torch.Generator().manual_seed(1)
    shift = torch.linspace(-1.0, 1.0, latent_dim, dtype=torch.float64)
    centres, widths = [1.5 + shift, -1.5 + shift.flip(0)], [0.3, 0.6]
    noise = [torch.randn(n // 2, latent_dim, generator=generator, dtype=torch.float64) for _ in centres]
    return torch.cat([c + w * e for c, w, e in zip(centres, widths, noise)])


def images_of(z: torch.Tensor) -> torch.Tensor:
    """Inputs in 0..16 that a fixed linear map 'decodes' from latent points z."""
    weight = torch.randn(z.shape[-1], INPUT_DIM, generator=torch.Generator().manual_seed(2), dtype=z.dtype)
    return (8.0 + 3.0 * z @ weight).clamp(0.0, INPUT_MAX)


def build(name: str, state: str, latent_dim: int = LATENT_DIM) -> tuple[nn.Module, MLPEncoder]:
    """A seeded prior and encoder in float64.

    `trained` takes 50 Adam steps of what VAE training does to them: the encoder learns to map
    images of the blob points back to the points, and the prior learns the points. Without the
    encoder's part, q(z | u_k) of a fresh encoder is nearly the same Gaussian for every u_k and
    the vamp mixtures would stay a single bump.
    """
    torch.manual_seed(0)
    prior, encoder = make_prior(name, latent_dim).double(), make_encoder(latent_dim).double()
    if state == "trained":
        z = blobs(latent_dim)
        x = images_of(z)
        optimizer = torch.optim.Adam([*prior.parameters(), *encoder.parameters()], lr=1e-2)
        for _ in range(50):
            optimizer.zero_grad()
            (-encoder(x).log_prob(z).mean() - prior(encoder).log_prob(z).mean()).backward()
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return prior, encoder


# --- The density integrates to one, and samples follow it -----------------------------------


@dataclass
class Gridded:
    """100k samples of a 2-D prior and its density on a grid of cells that covers them."""

    samples: torch.Tensor  # (NUM_SAMPLES, 2)
    centres: torch.Tensor  # (GRID_SIDE**2, 2), the midpoints of the cells
    density: torch.Tensor  # (GRID_SIDE**2,), p(centre)
    cell_area: float
    log_z_stderr: float = 0.0  # lars: the Monte Carlo standard error of its normaliser's log


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


@pytest.fixture(scope="module", params=[(p, s) for p in [*PRIORS, LARS_SHORT] for s in STATES], ids="-".join)
def gridded(request) -> Gridded:
    prior, encoder = build(*request.param)
    prior.eval()  # lars: Z from its large evaluation sample; the other priors do not depend on the mode
    return on_grid(prior(encoder))


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


def test_lars_running_estimate_of_z_is_the_training_value_and_follows_the_evaluation_estimate():
    """In training Z's value is the moving average and its gradient the batch estimate's; with the
    network held fixed, the average settles on the large-sample estimate of eval mode."""
    prior, _ = build("lars", "trained")
    exact = float(prior.eval()().normaliser.detach())
    prior.train()
    for _ in range(1000):  # 10 time constants of decay 0.99: the value from training is forgotten ...
        dist = prior()
    assert float(dist.normaliser.detach()) == float(prior.z_ema)
    assert float(prior.z_ema) == pytest.approx(exact, rel=0.01)  # ... and ~100 batches averaged
    dist.log_z.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in prior.net.parameters())


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


# --- Mixtures: log p(z) = logsumexp_k [log w_k + sum_l log N(z_l | mu_kl, sigma_kl^2)] ----------


def mixture_params(name: str, prior: nn.Module, encoder: MLPEncoder) -> tuple[list, list, list]:
    """(logits, mu, logvar) of the mixture components, read from the module, as Python lists."""
    if name == "mog":
        mu, logvar = prior.mu, prior.logvar
    elif name == "gtm":
        mu, logvar = prior.net(prior.grid).chunk(2, dim=-1)
    else:  # vamp, gtm_vamp: q(z | u_k) through the encoder
        mu, logvar = encoder.gaussian_params(prior.pseudo_inputs())
    return prior.logits.tolist(), mu.tolist(), logvar.tolist()


def log_sum_exp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def log_normal(x: float, mu: float, logvar: float) -> float:
    """log N(x | mu, sigma^2) with sigma = exp(logvar / 2)."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (x - mu) ** 2 / math.exp(logvar))


def brute_force_log_prob(z: torch.Tensor, logits: list, mu: list, logvar: list) -> torch.Tensor:
    """The mixture density by explicit loops: sum over dimensions inside, logsumexp outside."""
    log_w = [a - log_sum_exp(logits) for a in logits]
    out = []
    for point in z.tolist():
        per_component = []
        for k in range(len(logits)):
            log_n = sum(log_normal(point[d], mu[k][d], logvar[k][d]) for d in range(len(point)))
            per_component.append(log_w[k] + log_n)
        out.append(log_sum_exp(per_component))
    return torch.tensor(out, dtype=torch.float64)


def logsumexp_per_dimension(z: torch.Tensor, logits: list, mu: list, logvar: list) -> torch.Tensor:
    """A known bug in public VAE code: logsumexp over components per dimension, then a sum."""
    log_w = [a - log_sum_exp(logits) for a in logits]
    out = []
    for point in z.tolist():
        per_dim = [
            log_sum_exp([log_w[k] + log_normal(point[d], mu[k][d], logvar[k][d]) for k in range(len(logits))])
            for d in range(len(point))
        ]
        out.append(sum(per_dim))
    return torch.tensor(out, dtype=torch.float64)


def probe_points() -> torch.Tensor:
    """Points near the mass and far in the tails, where one component dominates the logsumexp."""
    torch.manual_seed(4)
    return torch.cat(
        [
            2.0 * torch.randn(8, LATENT_DIM, dtype=torch.float64),
            8.0 * torch.randn(4, LATENT_DIM, dtype=torch.float64),
        ]
    )


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("name", MIXTURES)
def test_mixture_log_prob_equals_brute_force_formula(name, state):
    prior, encoder = build(name, state)
    z = probe_points()
    with torch.no_grad():
        expected = brute_force_log_prob(z, *mixture_params(name, prior, encoder))
        actual = prior(encoder).log_prob(z)
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", MIXTURES)
def test_mixture_log_prob_is_accurate_in_float32(name):
    """Training runs in float32: log_prob there stays within float32 round-off of the exact formula
    (evaluated in float64 with the same float32 parameters)."""
    prior, encoder = build(name, "trained")
    prior, encoder = prior.float(), encoder.float()
    z = probe_points().float()
    with torch.no_grad():
        expected = brute_force_log_prob(z, *mixture_params(name, prior, encoder))
        actual = prior(encoder).log_prob(z).double()
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", MIXTURES)
def test_brute_force_check_would_catch_logsumexp_per_dimension(name):
    """The previous test is sensitive: the per-dimension variant is a different function once the
    components differ (fresh vamp components are nearly identical, so the trained state is used)."""
    prior, encoder = build(name, "trained")
    z = probe_points()
    with torch.no_grad():
        wrong = logsumexp_per_dimension(z, *mixture_params(name, prior, encoder))
        actual = prior(encoder).log_prob(z)
    assert (wrong - actual).abs().max() > 0.1


# --- Flow: log p(z) = log N(f(z) | 0, I) + log|det df/dz|, f: data -> base ---------------------


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


# --- Gradients and parameters ----------------------------------------------------------------


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


# --- VampPrior pseudo-inputs -----------------------------------------------------------------


def test_vamp_init_from_data_copies_distinct_rows():
    prior = make_prior("vamp")
    torch.manual_seed(7)
    x = torch.randint(0, 17, (100, INPUT_DIM)).float()
    prior.init_from_data(x)
    u = prior.pseudo_inputs()
    # (K, N): u_k is row n of x, its pixels at the bounds 0 and 16 moved 1% of the range inside
    matches = (u[:, None, :] == x[None, :, :].clamp(0.16, 15.84)).all(-1)
    assert matches.any(1).all()
    assert len(set(matches.float().argmax(1).tolist())) == u.shape[0]  # no row copied twice


def test_vamp_pseudo_inputs_copied_from_binary_images_are_learned():
    """The hard-tanh passes no gradient at its bounds, where every pixel of a binary image is."""
    torch.manual_seed(0)
    x = torch.randint(0, 2, (100, INPUT_DIM)).float()
    learned = VampPrior(LATENT_DIM, INPUT_DIM, init="data")
    learned.init_from_data(x)
    encoder = MLPEncoder(INPUT_DIM, LATENT_DIM, hidden=32, input_scale=1.0)
    learned(encoder).log_prob(blobs(LATENT_DIM).float()).sum().backward()
    assert (learned.u.grad != 0).all()  # every pixel of every pseudo-input moves
    assert ((learned.u - x[:, None]).abs().amax(-1).amin(0) <= 0.01 + 1e-7).all()  # each near one image
    fixed = VampPrior(LATENT_DIM, INPUT_DIM, init="data", learnable_inputs=False)
    fixed.init_from_data(x)
    assert set(fixed.pseudo_inputs().unique().tolist()) == {0.0, 1.0}  # vamp_data: the images as they are


def test_vamp_init_from_data_needs_at_least_k_rows():
    prior = make_prior("vamp", num_components=16)
    with pytest.raises(ValueError, match="at least 16 training inputs, got 15"):
        prior.init_from_data(torch.zeros(15, INPUT_DIM))


def test_vamp_data_pseudo_inputs_are_training_inputs_that_training_leaves_alone():
    prior, _ = build("vamp_data", "trained")
    x = images_of(blobs(LATENT_DIM)).float().double()  # copied into the float32 prior before .double()
    u = prior.pseudo_inputs()
    assert all((x == row).all(dim=1).any() for row in u)  # still K of the training inputs
    assert u.std(0).mean() > 0.1  # and different ones


@pytest.mark.parametrize("name", ["vamp", "gtm_vamp"])
def test_pseudo_inputs_stay_within_data_range(name):
    prior, _ = build(name, "trained")
    assert prior.pseudo_inputs().min() >= 0.0 and prior.pseudo_inputs().max() <= INPUT_MAX
    torch.manual_seed(8)
    with torch.no_grad():  # wild parameters: the map saturates at the bounds, never beyond
        for param in prior.parameters():
            param.copy_(1000.0 * torch.randn_like(param))
    u = prior.pseudo_inputs()
    assert u.min() == 0.0 and u.max() == INPUT_MAX


# --- The Hydra configs -----------------------------------------------------------------------


@pytest.mark.parametrize("name", PRIORS)
def test_hydra_config_gives_documented_defaults(name):
    cfg = compose_config(f"prior={name}")
    prior, encoder = hydra.utils.instantiate(cfg.prior), hydra.utils.instantiate(cfg.encoder)
    latent_dim = cfg.latent_dim
    if name == "standard":
        assert isinstance(prior, StandardPrior)
        assert prior.loc.tolist() == [0.0] * latent_dim and prior.scale.tolist() == [1.0] * latent_dim
    elif name == "mog":
        assert isinstance(prior, MoGPrior)
        assert prior.mu.shape == prior.logvar.shape == (16, latent_dim)
    elif name == "vamp":
        assert isinstance(prior, VampPrior)
        assert prior.u.shape == (16, cfg.dataset.input_dim) and prior.logits.shape == (16,)
        assert (prior.input_min, prior.input_max) == (cfg.dataset.input_min, cfg.dataset.input_max)
        # init_mean 0.5, init_std 0.15 are fractions of the data range [0, 16]: N(8, 2.4^2) pixels
        assert prior.u.mean().item() == pytest.approx(0.5 * cfg.dataset.input_max, abs=0.4)
        assert prior.u.std().item() == pytest.approx(0.15 * cfg.dataset.input_max, rel=0.1)
    elif name in ("gtm", "gtm_vamp"):
        assert isinstance(prior, GTMPrior if name == "gtm" else GTMVampPrior)
        half_range = 10.0 if name == "gtm" else 1.0  # gtm: the wider grid of issue 12 (README, "GTM defaults")
        axis = torch.linspace(-half_range, half_range, 4)
        torch.testing.assert_close(prior.grid, torch.cartesian_prod(axis, axis))  # 4 x 4 grid
        assert prior.logits.shape == (16,)
        if name == "gtm":  # two hidden layers of 64 units, then means and log-variances
            linears = [layer for layer in prior.net if isinstance(layer, torch.nn.Linear)]
            assert [(m.in_features, m.out_features) for m in linears] == [(2, 64), (64, 64), (64, 2 * latent_dim)]
    elif name == "flow":
        assert isinstance(prior, FlowPrior)
        assert len(prior.flow.transform.transforms) == 3
        assert prior.flow.transform.transforms[0].hyper[0].out_features == 256
    elif name in ("maf", "nsf"):
        assert isinstance(prior, MAFPrior if name == "maf" else NSFPrior)
        transforms = prior.flow.transform.transforms
        assert len(transforms) == 3 and transforms[0].hyper[0].out_features == 256
        assert [t.order.tolist() for t in transforms] == [[0, 1], [1, 0], [0, 1]]  # the order flips each time
        if name == "nsf":
            assert transforms[0].hyper[-1].out_features == latent_dim * (3 * 8 - 1)  # 8 bins: widths, heights, slopes
    elif name == "lars":
        assert isinstance(prior, ResampledPrior)
        assert (prior.truncation, prior.num_samples, prior.eval_samples, prior.ema_decay) == (100, 1024, 100_000, 0.99)
        assert [m.out_features for m in prior.net if isinstance(m, nn.Linear)] == [100, 100, 1]
    elif name == "vamp_data":
        assert isinstance(prior, VampPrior) and prior.init == "data"
        assert "u" not in dict(prior.named_parameters()) and prior.u.shape == (16, cfg.dataset.input_dim)
    assert isinstance(prior, Prior)
    prior.eval()  # lars: evaluation's Z
    assert prior(encoder).sample((4,)).shape == (4, latent_dim)


def test_fixed_pseudo_inputs_need_data_init():
    with pytest.raises(
        ConfigError, match=r"^prior.learnable_inputs=false is not allowed with prior.init=random: .*prior.init=data$"
    ):
        check_config(compose_config("prior=vamp", "prior.learnable_inputs=false"))
    check_config(compose_config("prior=vamp", "prior.learnable_inputs=false", "prior.init=data"))  # = prior=vamp_data
    with pytest.raises(ValueError, match="needs init='data'"):
        make_prior("vamp", learnable_inputs=False)


@pytest.mark.parametrize("override", ["prior.truncation=0", "prior.eval_samples=-1", "prior.ema_decay=1.0"])
def test_lars_keys_are_checked(override):
    with pytest.raises(ConfigError, match=override.split("=")[0]):
        check_config(compose_config("prior=lars", override))
