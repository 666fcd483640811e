"""Quality of the generated samples, and whether the prior's holes are where the bad ones come from.

Decoded prior samples x = E[x|z] (or x ~ p(x|z)), z ~ p(z), are compared with real reference
images in the features of a classifier trained on the dataset's labelled images
(`vaelab.evaluation.features`; never the VAE's own networks):

    precision, recall   improved precision and recall (Kynkäänniemi et al., 2019): the real
                        manifold is the union of balls around the reference features, each of
                        radius its distance to its k-th nearest reference neighbour; precision is
                        the fraction of samples inside it, recall the fraction of reference points
                        inside the samples' manifold (built the same way)
    FID                 Fréchet distance of Gaussians fitted to the two sets of features
                        (Dowson & Landau, 1982; Heusel et al., 2017)

The blog post's claim, per sample: prior samples where the aggregated posterior q(z) is low
(holes) decode to poor images. For every sample z, log q(z) (`AggregatedPosterior` of the test
encodings) is set against its quality, the feature distance to the nearest reference image, and
Spearman's rank correlation of log q(z) with *minus* that distance is reported: positive means
samples from low-q(z) regions are further from every real image, i.e. holes give worse samples.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from vaelab import figures
from vaelab.evaluation import features
from vaelab.evaluation.posterior import AggregatedPosterior
from vaelab.nets.hierarchy import top_level
from vaelab.rundir import QUALITY_FIGURE

__all__ = ["evaluate_quality", "fid", "precision_recall", "sample_quality", "spearman"]

log = logging.getLogger(__name__)

DEFAULTS = {"enabled": True, "k": 3, "num_samples": None, "decode": "sample"}  # and cache_dir: `settings_of`
DECODES = ("mean", "sample")
CHUNK = 1024  # rows of a distance matrix held at once


def _distances(a: Tensor, b: Tensor):
    """Row chunks (start, cdist(a[chunk], b)) in float64."""
    for start in range(0, len(a), CHUNK):
        yield start, torch.cdist(a[start : start + CHUNK].double(), b.double())


def knn_radii(points: Tensor, k: int) -> Tensor:
    """Distance from each point to its k-th nearest other point (itself, at distance 0, excluded)."""
    if not 0 < k < len(points):
        raise ValueError(
            f"eval.quality.k={k} is not allowed: must be from 1 to the number of points - 1 ({len(points) - 1})"
        )
    # topk rather than kthvalue: the same values, and much faster on the CPU for small k
    return torch.cat([d.topk(k + 1, dim=1, largest=False).values[:, -1] for _, d in _distances(points, points)])


def covered(points: Tensor, centres: Tensor, radii: Tensor) -> Tensor:
    """Whether each point lies in at least one ball (centre, radius): the k-NN manifold's test."""
    return torch.cat([(d <= radii[None]).any(dim=1) for _, d in _distances(points, centres)])


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019, eq. 1-3) of `fake` against `real`."""
    precision = covered(fake, real, knn_radii(real, k)).double().mean().item()
    recall = covered(real, fake, knn_radii(fake, k)).double().mean().item()
    return precision, recall


def nearest_distance(points: Tensor, reference: Tensor) -> Tensor:
    """Distance from each point to its nearest reference point."""
    return torch.cat([d.min(dim=1).values for _, d in _distances(points, reference)])


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) (Dowson & Landau, 1982). The trace of the
    root is sum sqrt(eig(S1^(1/2) S2 S1^(1/2))), a symmetric matrix with the eigenvalues of S1 S2,
    so two symmetric eigendecompositions replace a general matrix square root."""
    mu1, cov1, mu2, cov2 = (np.asarray(a, dtype=np.float64) for a in (mu1, cov1, mu2, cov2))
    values, vectors = np.linalg.eigh(cov1)
    root1 = (vectors * np.sqrt(values.clip(min=0))) @ vectors.T
    middle = root1 @ cov2 @ root1
    trace_root = np.sqrt(np.linalg.eigvalsh((middle + middle.T) / 2).clip(min=0)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * trace_root)


def fid(real: Tensor, fake: Tensor) -> float:
    """The Fréchet distance of Gaussians fitted (mean, covariance) to two feature sets (Heusel et al., 2017)."""
    a, b = real.double().cpu().numpy(), fake.double().cpu().numpy()
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def spearman(a, b) -> float:
    """Spearman's rank correlation (scipy's, ties at their average rank) over the finite pairs."""
    from scipy.stats import spearmanr  # scipy comes with scikit-learn

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or np.ptp(a[keep]) == 0 or np.ptp(b[keep]) == 0:  # undefined: fewer than 3 points, or constant
        return math.nan
    return float(spearmanr(a[keep], b[keep]).statistic)


def decoded(model, z: Tensor, decode: str) -> Tensor:
    """Images in data units, the scale the classifier was trained on: E[x|z] (the decoder's
    `mean`: the expected level of a categorical, the pixel probability of a Bernoulli) or a draw."""
    if decode == "sample":
        return model.decode(z).sample().float()
    mean = getattr(model.decoder, "mean", None)
    return mean(z) if mean is not None else model.decode(z).mean


def sample_quality(
    model,
    x_test: Tensor,
    sets: features.LabelledSets,
    classifier,
    k: int = 3,
    num_samples: int | None = None,
    decode: str = "sample",
) -> dict[str, Any]:
    """The measures for `model` (in eval mode, under no_grad and a seed: `evaluate_quality`), with
    q(z) built from the encodings of `x_test`. Returns the metrics and the per-sample arrays."""
    device = x_test.device
    classifier = classifier.to(device)
    x_ref, y_ref = (t.to(device) for t in sets.reference)
    z = model.prior_dist().sample((num_samples or len(x_ref),))
    x_fake = decoded(model, z, decode)
    real, fake = classifier.features(x_ref), classifier.features(x_fake)
    precision, recall = precision_recall(real, fake, k)
    distance = nearest_distance(fake, real)
    confidence = classifier.head(fake).softmax(-1).max(-1).values
    # q(z) of the top level, at each sample's top-level latent (a hierarchical model's z2: z's last dimensions)
    q_z = AggregatedPosterior.from_encoder(lambda batch: top_level(model.encode(batch)), x_test)
    log_q = q_z.log_prob(z[..., -q_z.loc.shape[-1] :])
    metrics = {
        "test/precision": precision,
        "test/recall": recall,
        "test/fid": fid(real, fake),
        "test/classifier_accuracy": features.accuracy(classifier, x_ref, y_ref),
        "test/quality_density_spearman": spearman(log_q.cpu(), -distance.cpu()),
        "test/confidence_density_spearman": spearman(log_q.cpu(), confidence.cpu()),
    }
    arrays = {"log_q": log_q.cpu().numpy(), "distance": distance.cpu().numpy(), "confidence": confidence.cpu().numpy()}
    return {"metrics": metrics, "arrays": arrays}


def quality_figure(arrays: dict[str, np.ndarray], rho: float, title: str = ""):
    """log q(z) against the distance to the nearest reference image, one point per prior sample,
    coloured by the classifier's confidence."""
    fig = Figure(figsize=(6.5, 4.5), dpi=100)
    ax = fig.add_axes((0.12, 0.12, 0.7, 0.78))
    points = ax.scatter(
        arrays["log_q"],
        arrays["distance"],
        c=arrays["confidence"],
        cmap="viridis",
        vmin=0,
        vmax=1,
        s=8,
        alpha=0.7,
        linewidths=0,
    )
    fig.colorbar(points, cax=fig.add_axes((0.85, 0.12, 0.03, 0.78)), label="classifier confidence")
    ax.set(
        xlabel="log q(z), aggregated posterior of the test set",
        ylabel="feature distance to nearest real image",
        title=f"{title}Spearman ρ(log q, −distance) = {rho:.3f}, n = {len(arrays['log_q'])}",
    )
    return fig


def settings_of(node: dict | None) -> dict[str, Any]:
    """The `eval.quality` node with the defaults for keys an older run's config lacks."""
    settings = {**DEFAULTS, "cache_dir": os.environ.get("VAELAB_CACHE", "~/.cache/vaelab"), **(node or {})}
    if settings["decode"] not in DECODES:
        raise ValueError(
            f"eval.quality.decode={settings['decode']!r} is not allowed: choose one of {', '.join(DECODES)}"
        )
    return settings


def evaluate_quality(
    results: dict[str, Any],
    model,
    x_test: Tensor,
    datamodule,
    node: dict | None,
    seed: int,
    run_dir: str | Path | None = None,
) -> dict[str, Any]:
    """`results` of `evaluate_model` with the sample-quality metrics added (unless switched off or
    the data have no labels: then a note in the log and `eval.quality_skipped`), the settings and
    `quality_seconds` in its `eval` block, and the figure `quality_vs_density.png` in `run_dir`."""
    settings = settings_of(node)
    run = {**results["eval"], "quality": settings}
    if not settings["enabled"]:
        return {**results, "eval": run}
    start = time.perf_counter()
    try:
        sets = features.labelled_sets(datamodule)
    except features.QualitySkipped as reason:
        log.info("quality: skipped, %s", reason)
        return {**results, "eval": {**run, "quality_skipped": str(reason)}}
    classifier, info = features.load_or_train(sets, settings["cache_dir"])
    log.info(
        "quality: classifier %s %s (%.1fs)",
        "loaded from" if info["cached"] else "trained and saved to",
        info["path"],
        time.perf_counter() - start,
    )
    was_training, device = model.training, x_test.device
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            out = sample_quality(
                model, x_test, sets, classifier, settings["k"], settings["num_samples"], settings["decode"]
            )
    finally:
        model.train(was_training)
    if run_dir is not None:
        try:
            rho = out["metrics"]["test/quality_density_spearman"]
            figures.save_png(
                figures.render(quality_figure(out["arrays"], rho, f"{type(model.prior).__name__}: ")),
                Path(run_dir) / QUALITY_FIGURE,
            )
        except Exception as error:  # noqa: BLE001 - a picture (say, of NaN samples) never ends the evaluation
            log.warning("quality: no figure: %s: %s", type(error).__name__, error)
    seconds = round(time.perf_counter() - start, 2)
    run.update(
        quality_seconds=seconds,
        seconds=round(run["seconds"] + seconds, 2),
        quality_num_samples=len(out["arrays"]["log_q"]),
        quality_num_reference=len(sets.reference[0]),
    )
    return {**results, **out["metrics"], "eval": run}
