"""Honest evaluation on a test set: importance-sampled log p(x) and the ELBO decomposition.

For N inputs x_n and S samples z_ns ~ q(z|x_n) each (Burda et al., 2016):

    log p(x_n) ≈ log (1/S) sum_s p(x_n|z_ns) p(z_ns) / q(z_ns|x_n)    (below log p(x_n) on average)
    ELBO = REC - KL,   KL = CE[q(z)||p(z)] - H[q(z|x)]                 (Tomczak, "Priors in VAEs")
    KL = I(x;z) + KL(q(z)||p(z))                                       (Hoffman & Johnson, 2016)

with q(z) = (1/N) sum_n q(z|x_n) the aggregated posterior of the N inputs. REC, KL, CE and H are
averages over the same N*S samples as the IS estimate, so ELBO = REC - KL and KL = CE - H hold to
float precision and the IS estimate is at least the ELBO for every input. I(x;z) needs log q(z), a
sum over all N inputs, so it is averaged over `num_latent_samples` fresh samples of q(z), the same
number per input; the marginal KL is KL - I, so that identity is exact too.

The functions take Distribution-returning callables (encode, decode) and a prior Distribution, so
they work for any model with that interface; `evaluate_model` adds eval mode, no_grad and a seed.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torch.distributions import Distribution, Independent, Normal

from vaelab.exact import MAX_LATENT_DIM, exact_metrics
from vaelab.quality import FIGURE, evaluate_quality, quality_rows

Conditional = Callable[[Tensor], Distribution]
# TensorBoard HPARAMS metrics: the columns that compare priors.
HP_METRICS = {
    "hp/test_nll": "test/nll",
    "hp/test_elbo": "test/elbo",
    "hp/mutual_info": "test/mutual_info",
    "hp/marginal_kl": "test/marginal_kl",
    "hp/test_nll_exact": "test/nll_exact",  # latent_dim <= 2 only
    "hp/fid": "test/fid",  # sample quality (vaelab.quality), when the data have labels
    "hp/precision": "test/precision",
    "hp/recall": "test/recall",
}
EXACT_CHOICES = ("auto", True, False)


def sample_averages(
    x: Tensor, encode: Conditional, decode: Conditional, prior: Distribution, num_samples: int, chunk_size: int
) -> dict[str, Tensor]:
    """Per input, over the same S samples z_s ~ q(z|x): the IS estimate `log_px` and the means of
    `rec` = log p(x|z), `log_pz` and `log_qzx`, all float64. Samples are drawn `chunk_size` at a
    time, so memory holds (chunk_size, len(x)) latent points whatever S is; the sum of weights is
    a running log-sum-exp."""
    q = encode(x)
    log_sum_w = torch.full(x.shape[:1], -math.inf, dtype=torch.float64, device=x.device)
    sums = {key: torch.zeros_like(log_sum_w) for key in ("rec", "log_pz", "log_qzx")}
    for start in range(0, num_samples, chunk_size):
        z = q.sample((min(chunk_size, num_samples - start),))  # (chunk, N, L)
        terms = {"rec": decode(z).log_prob(x), "log_pz": prior.log_prob(z), "log_qzx": q.log_prob(z)}
        terms = {key: value.double() for key, value in terms.items()}
        log_w = terms["rec"] + terms["log_pz"] - terms["log_qzx"]
        log_sum_w = torch.logaddexp(log_sum_w, log_w.logsumexp(0))
        for key, value in terms.items():
            sums[key] += value.sum(0)
    averages = {key: value / num_samples for key, value in sums.items()}
    return {"log_px": log_sum_w - math.log(num_samples), **averages}


def importance_sampled_log_likelihood(
    x: Tensor, encode: Conditional, decode: Conditional, prior: Distribution, num_samples: int, chunk_size: int = 100
) -> Tensor:
    """log p(x) per input, estimated with q(z|x) as the proposal and S samples."""
    return sample_averages(x, encode, decode, prior, num_samples, chunk_size)["log_px"]


class AggregatedPosterior:
    """q(z) = (1/N) sum_n N(z | loc_n, diag(scale_n^2)): the mixture of N diagonal-Gaussian encoders."""

    def __init__(self, loc: Tensor, scale: Tensor):
        self.loc, self.scale = loc.double(), scale.double()

    @classmethod
    def from_encoder(cls, encode: Conditional, x: Tensor, batch_size: int = 1024) -> AggregatedPosterior:
        parts = [encode(batch) for batch in x.split(batch_size)]
        if not all(isinstance(q, Independent) and isinstance(q.base_dist, Normal) for q in parts):
            raise TypeError(f"the aggregated posterior needs a diagonal Gaussian encoder, got {type(parts[0]).__name__}")
        return cls(torch.cat([q.mean for q in parts]), torch.cat([q.stddev for q in parts]))

    def log_prob(self, z: Tensor, chunk_size: int = 1024) -> Tensor:
        """log q(z) for z of shape (..., L), in float64. Squared distances come from matmuls, so
        memory holds (chunk_size, N) numbers rather than (chunk_size, N, L)."""
        num, dim = self.loc.shape
        precision = self.scale**-2
        const = -self.scale.log().sum(-1) - 0.5 * (self.loc**2 * precision).sum(-1) - 0.5 * dim * math.log(2 * math.pi)
        flat = z.reshape(-1, dim).double()
        log_q = [
            (const - 0.5 * (c**2 @ precision.T) + c @ (self.loc * precision).T).logsumexp(-1)
            for c in flat.split(chunk_size)
        ]
        return (torch.cat(log_q) - math.log(num)).reshape(z.shape[:-1])

    def sample_per_input(self, k: int) -> Tensor:
        """k samples from each q(z|x_n): shape (k, N, L), stratified samples of q(z)."""
        return self.loc + self.scale * torch.randn((k, *self.loc.shape), dtype=self.loc.dtype, device=self.loc.device)

    def conditional_log_prob(self, z: Tensor) -> Tensor:
        """log q(z_kn | x_n) for z of shape (k, N, L)."""
        return Normal(self.loc, self.scale).log_prob(z).sum(-1)

    @property
    def mean(self) -> Tensor:
        return self.loc.mean(0)

    @property
    def variance(self) -> Tensor:
        """Law of total variance: E_x[sigma^2(x)] + Var_x[mu(x)]."""
        return (self.scale**2).mean(0) + self.activity

    @property
    def activity(self) -> Tensor:
        """Cov_x(E_q[z|x]) per dimension; a unit is active above 0.01 (Burda et al., 2016)."""
        return self.loc.var(0, unbiased=False)


def held_out_holes(q_z: AggregatedPosterior, z_p: Tensor, num_latent_samples: int, level: float = 0.01
                   ) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Holes of q(z) under the prior samples z_p, calibrated on encodings *not* in the mixture.

    The inputs are split at random into halves A and B. q_A is the mixture of A's encoders, and
    log q_A at samples of B's encoders (new points of the aggregated posterior) gives its typical
    values: the threshold is their `level` quantile. Returns, averaged over the two ways round:
    the share of prior samples with log q_A(z) below the threshold (`level` when p(z) is the
    aggregated posterior, in any dimension), and their mean percentile rank among the log q_A
    values of B's samples (0.5 when p = q, 0 where the prior puts its mass where nothing encodes).
    Calibrating on q's own samples instead counts each sample's own component, which in high
    dimensions dominates the mixture and puts the threshold far above any new point (issue 13)."""
    num_inputs = q_z.loc.shape[0]
    if num_inputs < 2:
        nan = torch.tensor(math.nan, dtype=torch.float64)
        return nan, nan
    order = torch.randperm(num_inputs, device=q_z.loc.device)
    halves = order[: num_inputs // 2], order[num_inputs // 2 :]
    fractions, ranks = [], []
    for a, b in (halves, halves[::-1]):
        q_a, q_b = AggregatedPosterior(q_z.loc[a], q_z.scale[a]), AggregatedPosterior(q_z.loc[b], q_z.scale[b])
        log_q_b = q_a.log_prob(q_b.sample_per_input(math.ceil(num_latent_samples / len(b)))).flatten().sort().values
        log_q_p = q_a.log_prob(z_p)
        fractions.append((log_q_p < torch.quantile(log_q_b, level)).double().mean())
        ranks.append(torch.searchsorted(log_q_b, log_q_p).double().mean() / log_q_b.numel())
    return torch.stack(fractions).mean(), torch.stack(ranks).mean()


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
    (`vaelab.exact`, with `exact_grid` and `exact_prior_grid` intervals and boxes of ±exact_width
    posterior standard deviations); it draws no random numbers."""
    settings = {"num_samples": num_samples, "chunk_size": chunk_size, "num_latent_samples": num_latent_samples}
    for key, value in settings.items():
        if not (isinstance(value, int) and value > 0):
            raise ValueError(f"eval.{key}={value!r} is not allowed: must be a positive integer")
    if exact not in EXACT_CHOICES:
        raise ValueError(f"eval.exact={exact!r} is not allowed: choose one of auto, true, false")
    parts = [sample_averages(batch, encode, decode, prior, num_samples, chunk_size) for batch in x.split(batch_size)]
    log_px, rec, log_pz, log_qzx = (torch.cat([p[key] for p in parts]) for key in ("log_px", "rec", "log_pz", "log_qzx"))
    kl = (log_qzx - log_pz).mean()

    q_z = AggregatedPosterior.from_encoder(encode, x, batch_size)
    num_inputs = x.shape[0]
    z_q = q_z.sample_per_input(math.ceil(num_latent_samples / num_inputs))
    log_q_at_q = q_z.log_prob(z_q)
    mutual_info = (q_z.conditional_log_prob(z_q) - log_q_at_q).mean()

    # Holes (Rezende & Viola, 2018): prior samples where q(z) is below its 1st percentile, calibrated on
    # held-out encodings; the in-sample version (q's own samples) saturates in high dimensions.
    z_p = prior.sample((num_latent_samples,))
    log_q_at_p = q_z.log_prob(z_p)
    in_sample_hole_fraction = (log_q_at_p < torch.quantile(log_q_at_q.flatten(), 0.01)).double().mean()
    hole_fraction, hole_rank = held_out_holes(q_z, z_p, num_latent_samples)
    reverse_kl = (prior.log_prob(z_p).double() - log_q_at_p).mean()

    nll = -log_px.mean()
    prior_mean, prior_var = prior_moments(prior, z_p)
    metrics = {
        "test/nll": nll,
        "test/bpd": nll / (x[0].numel() * math.log(2)),
        "test/elbo": (rec + log_pz - log_qzx).mean(),
        "test/rec": rec.mean(),
        "test/kl": kl,
        "test/cross_entropy": -log_pz.mean(),
        "test/entropy": -log_qzx.mean(),
        "test/mutual_info": mutual_info,
        "test/marginal_kl": kl - mutual_info,
        "test/reverse_kl": reverse_kl,
        "test/hole_fraction_heldout": hole_fraction,
        "test/hole_rank": hole_rank,
        "test/hole_fraction": in_sample_hole_fraction,
        "test/active_units": (q_z.activity > 0.01).sum(),
    }
    if getattr(prior, "log_z_stderr", None) is not None:  # a prior normalised by a Monte Carlo Z (lars)
        metrics["test/prior_log_z_stderr"] = prior.log_z_stderr
    stats = {"q_mean": q_z.mean, "q_var": q_z.variance, "prior_mean": prior_mean, "prior_var": prior_var}
    stats["activity"] = q_z.activity
    results = {
        **{key: value.item() for key, value in metrics.items()},
        "latent_stats": {key: value.tolist() for key, value in stats.items()},
    }
    latent_dim = z_p.shape[-1]
    if exact is True and latent_dim > MAX_LATENT_DIM:
        raise ValueError(f"eval.exact=true needs latent_dim <= {MAX_LATENT_DIM}, got {latent_dim}: use auto or false")
    if exact and latent_dim <= MAX_LATENT_DIM:
        grids = {"grid": exact_grid, "prior_grid": exact_prior_grid, "width": float(exact_width)}
        start = time.perf_counter()
        results.update(exact_metrics(x, encode, decode, prior, z_p, **grids, chunk_size=chunk_size, batch_size=batch_size))
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


def evaluate_test_set(model, datamodule, cfg: DictConfig, run_dir: str | Path | None = None) -> dict[str, Any]:
    """`evaluate_model` on the whole test split of `datamodule`, in the test loader's batches, with
    `cfg.eval` and `cfg.seed`; on the GPU when the trainer config asks for one and there is one.
    Then the quality of the model's samples (`vaelab.quality`, `eval.quality`), with its figure
    in `run_dir` when given."""
    datamodule.setup("test")
    batches = [batch[0] for batch in datamodule.test_dataloader()]
    use_gpu = cfg.trainer.get("accelerator") in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    model.to("cuda" if use_gpu else "cpu")
    settings = OmegaConf.to_container(cfg.get("eval") or {}, resolve=True)  # older runs: the defaults
    quality = settings.pop("quality", None)  # vaelab.quality's settings, not evaluate's
    x = torch.cat(batches)
    results = evaluate_model(model, x, seed=cfg.seed, batch_size=len(batches[0]), **settings)
    return evaluate_quality(results, model, x.to(next(model.parameters()).device), datamodule, quality, cfg.seed, run_dir)


def log_evaluation(loggers, cfg: DictConfig, metrics: dict[str, Any], step: int, run_dir: str | Path | None = None) -> None:
    """Test scalars at `step` to every experiment tracker (Lightning loggers), and the run's
    hyperparameters (`vaelab.tracking.run_hparams`) with the `hp/` metrics, so runs with different
    priors compare in one table (TensorBoard's HPARAMS tab, MLflow's and W&B's run tables). The
    quality figure of `run_dir` goes to the trackers that keep images, when the evaluation drew it."""
    import numpy as np
    from PIL import Image

    from vaelab import tracking

    loggers = list(loggers) if isinstance(loggers, (list, tuple)) else [loggers]
    scalars = {key: value for key, value in metrics.items() if key.startswith("test/") and key != "test/loss"}
    tracking.log_scalars(loggers, scalars, step)
    figure = Path(run_dir) / FIGURE if run_dir is not None else None
    if figure is not None and "test/quality_density_spearman" in metrics and figure.is_file():
        tracking.log_image(loggers, "quality/vs_density", np.asarray(Image.open(figure).convert("RGB")), step)
    hp_metrics = {hp: metrics[key] for hp, key in HP_METRICS.items() if key in metrics}
    tracking.log_hparams(loggers, tracking.run_hparams(cfg), metrics=hp_metrics, step=step)
    tracking.finalize(loggers)


def exact_rows(m: dict[str, Any], row: Callable) -> list[str]:
    """The console line of the quadrature, if it ran."""
    if "test/nll_exact" not in m:
        return []
    gap = m["test/nll"] - m["test/nll_exact"]
    return [row("-log p(x) exact (quadrature)", m["test/nll_exact"], f"± {m['test/nll_exact_error']:.1e}; "
                f"IS - exact = {gap:.3f}; {m['eval'].get('exact_seconds', 0):.1f}s")]  # fmt: skip


def format_table(metrics: dict[str, Any]) -> str:
    """A short console summary of `evaluate_model`'s output."""
    m, run, stats = metrics, metrics["eval"], metrics["latent_stats"]
    num = lambda value: f"{value:.3f}" if value >= 0 else f"({value:.3f})"  # noqa: E731

    def row(label: str, value: float, rest: str = "") -> str:
        return f"  {label:<32}{value:10.3f}  {rest}"

    lines = [
        f"vaelab eval: {run['num_inputs']} test inputs, S={run['num_samples']} importance samples "
        f"(chunks of {run['chunk_size']}), seed {run['seed']}, {run['seconds']:.1f}s",
        row("-log p(x) [nats]", m["test/nll"], f"{m['test/bpd']:.4f} bits/dim"),
        *exact_rows(m, row),
        row("ELBO = REC - KL", m["test/elbo"], f"= {num(m['test/rec'])} - {num(m['test/kl'])}"),
        row("KL = CE[q(z)||p(z)] - H[q(z|x)]", m["test/kl"], f"= {num(m['test/cross_entropy'])} - {num(m['test/entropy'])}"),
        row("KL = I(x;z) + KL(q(z)||p(z))", m["test/kl"], f"= {num(m['test/mutual_info'])} + {num(m['test/marginal_kl'])}"
            f"   (I <= log N = {math.log(run['num_inputs']):.3f})"),
        row("holes: KL(p(z)||q(z))", m["test/reverse_kl"], f"{100 * m['test/hole_fraction_heldout']:.1f}% of prior "
            f"samples in holes (1% if p = q), rank {m['test/hole_rank']:.3f} (0.5 if p = q)"),
        f"  {'active units':<32}{m['test/active_units']:10d}  of {len(stats['activity'])}",
        *quality_rows(m, row),
        "  dim    q mean     q var  prior mean  prior var  activity",
    ]  # fmt: skip
    columns = zip(stats["q_mean"], stats["q_var"], stats["prior_mean"], stats["prior_var"], stats["activity"])
    for dim, (q_mean, q_var, prior_mean, prior_var, activity) in enumerate(columns):
        if dim == 8:
            lines.append(f"  ... ({len(stats['activity']) - 8} more dimensions in metrics.json)")
            break
        lines.append(f"  {dim:3d} {q_mean:9.3f} {q_var:9.3f} {prior_mean:11.3f} {prior_var:10.3f} {activity:9.3f}")
    return "\n".join(lines)
