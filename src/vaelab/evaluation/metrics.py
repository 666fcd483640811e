"""Honest evaluation on a test set: importance-sampled log p(x) and the ELBO decomposition.

For N inputs x_n and S samples z_ns ~ q(z|x_n) each (Burda et al., 2016):

    log p(x_n) ≈ log (1/S) sum_s p(x_n|z_ns) p(z_ns) / q(z_ns|x_n)    (below log p(x_n) on average)
    ELBO = REC - KL,   KL = CE[q(z)||p(z)] - H[q(z|x)]                 (Tomczak, "Priors in VAEs")
    KL = I(x;z) + KL(q(z)||p(z))                                       (Hoffman & Johnson, 2016)
    KL(q(z)||p(z)) = TC(q(z)) + sum_j KL(q(z_j)||p(z_j))               (Chen et al., 2018; factorised p)

with q(z) = (1/N) sum_n q(z|x_n) the aggregated posterior of the N inputs. REC, KL, CE and H are
averages over the same N*S samples as the IS estimate, so ELBO = REC - KL and KL = CE - H hold to
float precision and the IS estimate is at least the ELBO for every input. I(x;z) needs log q(z), a
sum over all N inputs, so it is averaged over `num_latent_samples` fresh samples of q(z), the same
number per input; the marginal KL is KL - I, so that identity is exact too. The total correlation
TC(q(z)) = E_q[log q(z) - sum_j log q(z_j)] and, for a prior that factorises over dimensions, the
dimension-wise KL E_q[sum_j log q(z_j) - log p(z)] are averaged over those same samples of q(z): with
I they add up to the same samples' KL, and to KL above within Monte Carlo error.

The functions take Distribution-returning callables (encode, decode) and a prior Distribution, so
they work for any model with that interface; `evaluate_model` adds eval mode, no_grad and a seed.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent

from vaelab.evaluation.exact import MAX_LATENT_DIM, exact_metrics
from vaelab.evaluation.likelihood import Conditional, sample_averages
from vaelab.evaluation.posterior import AggregatedPosterior, held_out_holes
from vaelab.nets.hierarchy import top_level

__all__ = ["evaluate", "evaluate_model", "prior_moments"]


EXACT_CHOICES = ("auto", True, False)


def factorised(prior: Distribution) -> bool:
    """p(z) = prod_j p(z_j): a torch Independent over univariate distributions (the standard
    prior), for which KL(q(z)||p(z)) splits into TC and the dimension-wise KLs."""
    return isinstance(prior, Independent) and prior.base_dist.event_shape == torch.Size()


def prior_moments(prior: Distribution, samples: Tensor) -> tuple[Tensor, Tensor]:
    """The prior's mean and variance in closed form where torch has one (Gaussians, mixtures),
    else from samples (flows)."""
    try:
        return prior.mean.double(), prior.variance.double()
    except NotImplementedError:
        return samples.double().mean(0), samples.double().var(0)


def evaluate(
    x: Tensor,
    encode: Conditional,
    decode: Conditional,
    prior: Distribution,
    num_samples: int = 1000,
    chunk_size: int = 100,
    num_latent_samples: int = 10000,
    batch_size: int = 1024,
    exact: bool | str = "auto",
    exact_grid: int = 24,
    exact_prior_grid: int = 128,
    exact_width: float = 6.0,
) -> dict[str, Any]:
    """All test metrics for the inputs x (N, D), plus per-dimension `latent_stats`. Inputs go
    `batch_size` at a time, so memory holds chunk_size * batch_size latent points (and the
    decoder's and prior's outputs for them). Call it under no_grad and a seed (`evaluate_model`).
    With `exact` ("auto": when latent_dim <= 2) the quadrature `test/nll_exact` is added
    (`vaelab.evaluation.exact`, with `exact_grid` and `exact_prior_grid` intervals and boxes of ±exact_width
    posterior standard deviations); it draws no random numbers."""
    settings = {"num_samples": num_samples, "chunk_size": chunk_size, "num_latent_samples": num_latent_samples}
    for key, value in settings.items():
        if not (isinstance(value, int) and value > 0):
            raise ValueError(f"eval.{key}={value!r} is not allowed: must be a positive integer")
    if exact not in EXACT_CHOICES:
        raise ValueError(f"eval.exact={exact!r} is not allowed: choose one of auto, true, false")
    parts = [sample_averages(batch, encode, decode, prior, num_samples, chunk_size) for batch in x.split(batch_size)]
    log_px, rec, log_pz, log_qzx = (
        torch.cat([p[key] for p in parts]) for key in ("log_px", "rec", "log_pz", "log_qzx")
    )
    kl = (log_qzx - log_pz).mean()

    # A hierarchical model's q(z), its decomposition and its holes are those of the top level, z2:
    # the prior's own space (`vaelab.nets.hierarchy`); a one-level model's top is itself.
    top_encode, top_prior = (lambda batch: top_level(encode(batch))), top_level(prior)
    q_z = AggregatedPosterior.from_encoder(top_encode, x, batch_size)
    num_inputs = x.shape[0]
    z_q = q_z.sample_per_input(math.ceil(num_latent_samples / num_inputs))
    log_q_at_q = q_z.log_prob(z_q)
    log_q_given_x = q_z.conditional_log_prob(z_q)  # log q(z|x_n) at z ~ q(z|x_n)
    mutual_info = (log_q_given_x - log_q_at_q).mean()
    log_p_at_q = top_prior.log_prob(z_q.float()).double()
    kl_top = kl if top_prior is prior else (log_q_given_x - log_p_at_q).mean()
    log_marginals = q_z.marginal_log_prob(z_q).sum(-1)
    total_correlation = (log_q_at_q - log_marginals).mean()

    # Holes (Rezende & Viola, 2018): prior samples where q(z) is below its 1st percentile, calibrated on
    # held-out encodings; the in-sample version (q's own samples) saturates in high dimensions.
    z_p = top_prior.sample((num_latent_samples,))
    log_q_at_p = q_z.log_prob(z_p)
    in_sample_hole_fraction = (log_q_at_p < torch.quantile(log_q_at_q.flatten(), 0.01)).double().mean()
    hole_fraction, hole_rank = held_out_holes(q_z, z_p, num_latent_samples)
    reverse_kl = (top_prior.log_prob(z_p).double() - log_q_at_p).mean()

    nll = -log_px.mean()
    prior_mean, prior_var = prior_moments(top_prior, z_p)
    metrics = {
        "test/nll": nll,
        "test/bpd": nll / (x[0].numel() * math.log(2)),
        "test/elbo": (rec + log_pz - log_qzx).mean(),
        "test/rec": rec.mean(),
        "test/kl": kl,
        "test/cross_entropy": -log_pz.mean(),
        "test/entropy": -log_qzx.mean(),
        "test/mutual_info": mutual_info,
        "test/marginal_kl": kl_top - mutual_info,
        "test/reverse_kl": reverse_kl,
        "test/hole_fraction_heldout": hole_fraction,
        "test/hole_rank": hole_rank,
        "test/hole_fraction": in_sample_hole_fraction,
        "test/active_units": (q_z.activity > 0.01).sum(),
    }
    metrics["test/total_correlation"] = total_correlation
    if factorised(top_prior):  # KL(q(z)||p(z)) = TC + sum_j KL(q(z_j)||p(z_j))
        metrics["test/dimwise_kl"] = (log_marginals - log_p_at_q).mean()
    if top_prior is not prior:  # the KL of the lower level: E KL(q(z1|x, z2) || p(z1|z2))
        metrics["test/kl_bottom"] = kl - kl_top
    if getattr(prior, "log_z_stderr", None) is not None:  # a prior normalised by a Monte Carlo Z (lars)
        metrics["test/prior_log_z_stderr"] = prior.log_z_stderr
    stats = {"q_mean": q_z.mean, "q_var": q_z.variance, "prior_mean": prior_mean, "prior_var": prior_var}
    stats["activity"] = q_z.activity
    exact_log_prob = bool(getattr(prior, "exact_log_prob", True))
    results = {
        **{key: value.item() for key, value in metrics.items()},
        "prior/exact_log_prob": exact_log_prob,
        **({} if exact_log_prob else {"prior/log_prob_estimator": getattr(prior, "log_prob_estimator", "unknown")}),
        "latent_stats": {key: value.tolist() for key, value in stats.items()},
    }
    latent_dim = prior.event_shape[-1] if prior.event_shape else z_p.shape[-1]  # every level's dimensions
    if exact is True and latent_dim > MAX_LATENT_DIM:
        raise ValueError(f"eval.exact=true needs latent_dim <= {MAX_LATENT_DIM}, got {latent_dim}: use auto or false")
    if exact and latent_dim <= MAX_LATENT_DIM:
        grids = {"grid": exact_grid, "prior_grid": exact_prior_grid, "width": float(exact_width)}
        z_joint = z_p if top_prior is prior else prior.sample((num_latent_samples,))  # the prior's box
        start = time.perf_counter()
        results.update(
            exact_metrics(x, encode, decode, prior, z_joint, **grids, chunk_size=chunk_size, batch_size=batch_size)
        )
        results["exact"]["seconds"] = round(time.perf_counter() - start, 2)
    return results


def evaluate_model(model, x: Tensor, seed: int, **settings: int) -> dict[str, Any]:
    """`evaluate` for a VAE (encode, decode, prior_dist) in eval mode, without gradients, with the
    random stream seeded by `seed` (the global one is left as it was), so a rerun reproduces it.
    `settings` are the `eval` config node; the run's settings and time are recorded under `eval`."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    start = time.perf_counter()
    with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        metrics = evaluate(x.to(device), model.encode, model.decode, model.prior_dist(), **settings)
    model.train(was_training)
    seconds = round(time.perf_counter() - start, 2)
    timing = {"seconds": seconds, "device": device.type}
    if "exact" in metrics:  # the quadrature's share of the time, recorded with the settings
        timing["exact_seconds"] = metrics["exact"].pop("seconds")
    return {**metrics, "eval": {**settings, "seed": seed, "num_inputs": x.shape[0], **timing}}
