"""The exact marginal likelihood log p(x) = log ∫ p(x|z) p(z) dz by quadrature, for latent_dim ≤ 2.

The integrand f(z) = p(x|z) p(z) lives where the posterior p(z|x) does, which q(z|x) tracks, and
nowhere the prior has no mass. A smooth window φ_n splits it, f = f·φ_n + f·(1 - φ_n), into

    local   f·φ_n on a (n+1)^L trapezoid grid over the input's own box B_n = E_q[z] ± k·std_q[z]
            (k = `width`); φ_n = 1 on the inner half of B_n, 0 outside it, infinitely smooth;
    prior   f·(1 - φ_n) on one (m+1)^L grid shared by all inputs, over a box R holding the prior's
            mass (the range of prior samples, widened by a quarter of it on each side);

    p(x) ≈ local sum + prior sum,  and what R misses is  ≤  max_z p(x|z) · P_prior(z ∉ R).

Both integrands are smooth (no cut at B_n's edge), and the local one vanishes at its box's edge
with all its derivatives, where the trapezoid rule converges faster than any power of h.

Everything is in log space (log-sum-exp of log f + log weights), float64. The error estimate per
input adds three terms: |sum(h) - sum(2h)| for each grid (every other point is the grid with twice
the spacing, so the comparison costs nothing; the trapezoid rule on a smooth integrand converges
faster than geometrically, so the difference between h and 2h bounds the error at h once the grid
resolves f), and the tail term above, with P_prior(z ∉ R) = 1 - (the prior's mass on R's grid)
plus that mass's own h-vs-2h difference, and max p(x|z) the largest value on either grid. An
error E on p(x) is at most -log(1 - E/p̂(x)) nats on log p(x). It is an estimate (a grid that
resolves nothing can agree with itself), which is why the tests check it against closed forms.

Cost: the local grids are N·(n+1)^L decoder passes, like S = (n+1)^L importance samples; the prior
grid goes through the decoder once and is shared by all inputs (N·(m+1)^L log-likelihood terms).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Bernoulli, Categorical, Distribution, Independent

from vaelab.evaluation.likelihood import Conditional

__all__ = ["MAX_LATENT_DIM", "exact_log_likelihood", "exact_metrics"]
MAX_LATENT_DIM = 2


def trapezoid_log_weights(intervals: int, dim: int, dtype=torch.float64, device=None) -> Tensor:
    """log of the (intervals+1)^dim tensor-product trapezoid weights on the unit cube, flattened
    in `cartesian_prod` order (multiply by the box's volume to use them)."""
    w = torch.ones(intervals + 1, dtype=dtype, device=device) / intervals
    w[0] = w[-1] = 0.5 / intervals
    grids = torch.meshgrid(*([w.log()] * dim), indexing="ij")
    return sum(grids).reshape(-1)


def unit_grid(intervals: int, dim: int, dtype=torch.float64, device=None) -> tuple[Tensor, Tensor]:
    """Points of the regular grid on [0, 1]^dim, shape ((intervals+1)^dim, dim), and a boolean mask
    of the points of the grid with half as many intervals (even indices in every dimension)."""
    axis = torch.linspace(0, 1, intervals + 1, dtype=dtype, device=device)
    index = torch.arange(intervals + 1, device=device)
    points = torch.stack(torch.meshgrid(*([axis] * dim), indexing="ij"), -1).reshape(-1, dim)
    coarse = torch.stack(torch.meshgrid(*([index % 2 == 0] * dim), indexing="ij"), -1).reshape(-1, dim).all(-1)
    return points, coarse


def log_abs_diff(a: Tensor, b: Tensor) -> Tensor:
    """log |exp(a) - exp(b)|, -inf where they are equal."""
    high, low = torch.maximum(a, b), torch.minimum(a, b)
    return torch.where(high == low, torch.full_like(high, -math.inf), high + torch.log(-torch.expm1(low - high)))


def log_window(t: Tensor) -> Tensor:
    """log φ(t) for t (..., L) in box coordinates (the box is [-1, 1]^L): φ = 1 on [-1/2, 1/2]^L,
    0 outside [-1, 1]^L, and infinitely differentiable, a product over dimensions of the smooth
    step sigmoid(1/(1-u) - 1/u) with u = 2 - 2|t| clamped to [0, 1]."""
    u = (2 - 2 * t.abs()).clamp(0, 1)
    return torch.nn.functional.logsigmoid(1 / (1 - u) - 1 / u).sum(-1)  # u = 0: -inf, u = 1: 0


def log_likelihood_table(decode: Conditional, z: Tensor, x: Tensor) -> Tensor:
    """log p(x_n | z_g) for every grid point z_g (G, L) and input x_n (N, D): shape (G, N). The
    decoder runs once per point; factorised categorical or Bernoulli pixels then need one matrix
    product (the gather over the G x N x D table is the slow part), other likelihoods broadcast."""
    px = decode(z)
    base = px.base_dist if isinstance(px, Independent) and px.reinterpreted_batch_ndims == 1 else None
    if isinstance(base, Categorical) and base.logits.dim() == 3:
        log_pmf = base.logits  # normalised by Categorical: (G, D, K)
        onehot = torch.nn.functional.one_hot(x.long(), log_pmf.shape[-1]).flatten(1).to(log_pmf.dtype)
        return log_pmf.flatten(1) @ onehot.T
    if isinstance(base, Bernoulli) and base.logits.dim() == 2:
        logits = base.logits  # log p(x|z) = x·logits - softplus(logits), summed over pixels
        return logits @ x.to(logits.dtype).T - torch.nn.functional.softplus(logits).sum(-1, keepdim=True)
    return decode(z[:, None, :]).log_prob(x)  # batch shape (G, 1) against the N inputs


def prior_box(samples: Tensor, widen: float = 0.25) -> tuple[Tensor, Tensor]:
    """The box R: the range of the prior samples, widened by `widen` of it on each side."""
    lo, hi = samples.min(0).values.double(), samples.max(0).values.double()
    span = hi - lo
    return lo - widen * span, hi + widen * span


def exact_log_likelihood(
    x: Tensor,
    encode: Conditional,
    decode: Conditional,
    prior: Distribution,
    prior_samples: Tensor,
    grid: int = 24,
    prior_grid: int = 128,
    width: float = 6.0,
    chunk_size: int = 256,
    batch_size: int = 1024,
) -> dict[str, Tensor]:
    """Per input: `log_px` (the quadrature) and `error` (the error estimate in nats, an upper bound
    on |error| once the coarser grids resolve the integrand; see the module docstring); and the
    prior's box `box_lo`, `box_hi` and the prior mass outside it, `tail_mass`. `grid` and
    `prior_grid` are the numbers of intervals per dimension (even); `chunk_size` grid points go
    through the decoder at a time. Call under no_grad."""
    dim = prior_samples.shape[-1]
    if dim > MAX_LATENT_DIM:
        raise ValueError(f"the exact likelihood needs latent_dim <= {MAX_LATENT_DIM}, got {dim}")
    for key, value in (("grid", grid), ("prior_grid", prior_grid)):
        if not (isinstance(value, int) and value >= 2 and value % 2 == 0):
            raise ValueError(f"eval.exact_{key}={value!r} is not allowed: must be an even integer >= 2")
    device = x.device
    f64 = dict(dtype=torch.float64, device=device)
    unit, coarse = unit_grid(grid, dim, **f64)
    log_w = trapezoid_log_weights(grid, dim, **f64)
    log_w_coarse = trapezoid_log_weights(grid // 2, dim, **f64)

    # Local grids: z = loc_n + width * scale_n * t for t on [-1, 1]^L, for every input n at once.
    # The integrand there is f·φ_n, which vanishes at the box's edge with all its derivatives.
    t = 2 * unit - 1
    log_local_w = log_w + log_window(t)
    parts = {"fine": [], "coarse": [], "loc": [], "half": [], "max_rec": []}
    for batch in x.split(batch_size):
        q = encode(batch)
        loc, half = q.mean.double(), width * q.stddev.double()  # centre and half-widths of the box
        log_f = []
        for t_chunk in t.split(chunk_size):
            z = (loc + half * t_chunk[:, None, :]).to(batch.dtype)  # (chunk, n, L)
            log_f.append(torch.stack([decode(z).log_prob(batch).double(), prior.log_prob(z).double()]))
        rec, log_pz = torch.cat(log_f, 1)  # (points, n) each
        log_volume = (2 * half).log().sum(-1)
        log_wf = rec + log_pz + log_local_w[:, None]
        parts["fine"].append(log_wf.logsumexp(0) + log_volume)
        coarse_w = log_w_coarse + log_window(t[coarse])
        parts["coarse"].append((rec + log_pz)[coarse].add(coarse_w[:, None]).logsumexp(0) + log_volume)
        parts["loc"].append(loc), parts["half"].append(half), parts["max_rec"].append(rec.max(0).values)
    local_fine, local_coarse, loc, half, max_rec = (torch.cat(parts[key]) for key in parts)

    # The prior grid, shared by all inputs: there the integrand is f·(1 - φ_n).
    box_lo, box_hi = prior_box(prior_samples)
    points, coarse_p = unit_grid(prior_grid, dim, **f64)
    points = box_lo + (box_hi - box_lo) * points
    log_cell = ((box_hi - box_lo) / prior_grid).log().sum()  # each point stands for a cell this size
    num = x.shape[0]
    prior_fine = torch.full((num,), -math.inf, **f64)
    prior_coarse = prior_fine.clone()
    mass_fine, mass_coarse = [], []
    for z, is_coarse in zip(points.split(chunk_size), coarse_p.split(chunk_size)):
        zf = z.to(x.dtype)
        log_pz = prior.log_prob(zf).double()  # (chunk,)
        mass_fine.append(log_pz), mass_coarse.append(log_pz[is_coarse])
        rec = log_likelihood_table(decode, zf, x).double()  # (chunk, N)
        max_rec = torch.maximum(max_rec, rec.max(0).values)
        log_rest = torch.log(-torch.expm1(log_window((z[:, None, :] - loc) / half)))  # log(1 - φ_n)
        log_f = rec + log_pz[:, None] + log_rest
        prior_fine = torch.logaddexp(prior_fine, log_f.logsumexp(0))
        prior_coarse = torch.logaddexp(prior_coarse, log_f[is_coarse].logsumexp(0))
    prior_fine, prior_coarse = prior_fine + log_cell, prior_coarse + log_cell + dim * math.log(2)

    mass = (torch.cat(mass_fine).logsumexp(0) + log_cell).exp()
    mass_2h = (torch.cat(mass_coarse).logsumexp(0) + log_cell + dim * math.log(2)).exp()
    tail_mass = (1 - mass).clamp(min=0) + (mass - mass_2h).abs()

    log_px = torch.logaddexp(local_fine, prior_fine)
    log_error = torch.stack(
        [
            log_abs_diff(local_fine, local_coarse),
            log_abs_diff(prior_fine, prior_coarse),
            max_rec + tail_mass.clamp(min=1e-300).log(),
        ]
    ).logsumexp(0)
    ratio = (log_error - log_px).exp()
    error = torch.where(ratio < 1, -torch.log1p(-ratio.clamp(max=1 - 1e-16)), torch.full_like(ratio, math.inf))
    return {"log_px": log_px, "error": error, "box_lo": box_lo, "box_hi": box_hi, "tail_mass": tail_mass}


def exact_metrics(
    x: Tensor, encode: Conditional, decode: Conditional, prior: Distribution, prior_samples: Tensor, **settings: Any
) -> dict[str, Any]:
    """`test/nll_exact` (mean over inputs) and `test/nll_exact_error` (the mean of the per-input
    bounds, a bound on the mean's error), and an `exact` record of the prior's box and the worst input."""
    out = exact_log_likelihood(x, encode, decode, prior, prior_samples, **settings)
    return {
        "test/nll_exact": -out["log_px"].mean().item(),
        "test/nll_exact_error": out["error"].mean().item(),
        "exact": {
            "max_error": out["error"].max().item(),
            "prior_box": [out["box_lo"].tolist(), out["box_hi"].tolist()],
            "prior_tail_mass": out["tail_mass"].item(),
        },
    }
