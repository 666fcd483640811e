"""Sample quality: the measures against hand-computed cases and closed forms, data without labels,
and the measures in a run's files."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch
from helpers import ROOT
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import vaelab
from vaelab.data import InMemoryDataModule
from vaelab.evaluation import quality

QUICK = ("figures.enabled=false", "eval.num_samples=10", "eval.exact=false", "eval.num_latent_samples=500")


def line(*values: float) -> torch.Tensor:
    """Points on the first axis of a 2-D plane."""
    return torch.tensor([[v, 0.0] for v in values])


# -- precision and recall (Kynkäänniemi et al., 2019) ---------------------------------------------
def test_a_set_against_itself_has_precision_and_recall_one():
    points = torch.randn(300, 5)
    assert quality.precision_recall(points, points.clone(), k=3) == (1.0, 1.0)


def test_disjoint_far_apart_sets_have_precision_and_recall_zero():
    real = torch.randn(200, 5)
    assert quality.precision_recall(real, torch.randn(150, 5) + 100.0, k=3) == (0.0, 0.0)


def test_precision_and_recall_of_shifted_points_on_a_line_by_hand():
    real = line(*range(10))  # 0, 1, ..., 9: with k = 1 every ball has radius 1
    # Shifted by 0.5: each sample is 0.5 from a real point, and each real point from a sample.
    assert quality.precision_recall(real, line(*(np.arange(10) + 0.5)), k=1) == (1.0, 1.0)
    # Shifted by 1.5: 10.5 is 1.5 from 9 (outside); real 0 is 1.5 from the nearest sample 1.5 (outside).
    assert quality.precision_recall(real, line(*(np.arange(10) + 1.5)), k=1) == (0.9, 0.9)
    # k = 2: the end points' radius is 2 (their 2nd neighbour), the inner points' 1.
    assert quality.knn_radii(real, 2).tolist() == [2.0] + [1.0] * 8 + [2.0]
    fake = line(-1.5, 4.5, 11.5, 20.0)  # in: -1.5 (1.5 from 0), 4.5; out: 11.5 (2.5 from 9), 20
    assert quality.covered(fake, real, quality.knn_radii(real, 2)).tolist() == [True, True, False, False]


def test_k_must_be_smaller_than_the_number_of_points():
    with pytest.raises(ValueError, match="eval.quality.k=5 is not allowed"):
        quality.knn_radii(torch.randn(5, 2), 5)


# -- Fréchet distance -----------------------------------------------------------------------------
def random_covariance(generator: torch.Generator, dim: int) -> np.ndarray:
    a = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    return (a @ a.T / dim + 0.2 * torch.eye(dim, dtype=torch.float64)).numpy()


def test_frechet_distance_matches_the_closed_form_with_scipys_matrix_square_root():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    generator = torch.Generator().manual_seed(0)
    cov1, cov2 = random_covariance(generator, 6), random_covariance(generator, 6)  # they do not commute
    mu1, mu2 = np.arange(6.0), np.ones(6)
    closed = ((mu1 - mu2) ** 2).sum() + np.trace(cov1 + cov2 - 2 * scipy_linalg.sqrtm(cov1 @ cov2).real)
    assert quality.frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(closed, rel=1e-8)
    assert quality.frechet_distance(mu1, cov1, mu1, cov1) == pytest.approx(0.0, abs=1e-8)


def test_fid_of_large_samples_approaches_the_gaussians_distance_and_zero_for_one_distribution():
    # 1-D Gaussians: d = (m1 - m2)^2 + (s1 - s2)^2. Here (0 - 2)^2 + (1 - 3)^2 = 8, twice over in 2-D.
    generator = torch.Generator().manual_seed(1)
    a = torch.randn(200_000, 2, generator=generator)
    b = 2.0 + 3.0 * torch.randn(200_000, 2, generator=generator)
    assert quality.fid(a, b) == pytest.approx(16.0, rel=0.02)
    assert quality.fid(a, torch.randn(200_000, 2, generator=generator)) < 1e-3


# -- Spearman's rank correlation ------------------------------------------------------------------
def test_spearman_by_hand_and_against_scipy_with_ties():
    assert quality.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert quality.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks (1, 2, 3, 4) against (2, 1, 4, 3): 1 - 6 * sum d^2 / (n (n^2 - 1)) = 1 - 6 * 4 / 60 = 0.6
    assert quality.spearman([1, 2, 3, 4], [2, 1, 4, 3]) == pytest.approx(0.6)
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 200).astype(float), rng.normal(size=200)
    b[::7] = 0.5  # ties in both
    assert quality.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert quality.spearman([1, 2, math.nan, 4, 5], [1, 2, 3, math.inf, 6]) == pytest.approx(1.0)  # finite pairs


class Unlabelled(InMemoryDataModule):
    def load(self):
        return {split: (torch.rand(20, 64) * 16, torch.full((20,), -1)) for split in ("train", "val", "test")}


def test_data_without_labels_skip_quality_with_a_note(caplog):
    datamodule = Unlabelled()
    datamodule.setup()
    results = {"test/nll": 1.0, "eval": {"seconds": 1.0}}
    with caplog.at_level("INFO", logger="vaelab.evaluation.quality"):
        out = quality.evaluate_quality(results, None, torch.zeros(1), datamodule, None, seed=0)
    assert "test/fid" not in out and "train split has no class labels" in out["eval"]["quality_skipped"]
    assert "quality: skipped" in caplog.text


# -- in a run -------------------------------------------------------------------------------------
def test_decoded_samples_are_in_the_data_units_the_classifier_knows(make_cfg):
    model = vaelab.build(make_cfg()).eval()
    z = torch.randn(50, 2)
    with torch.no_grad():
        mean, sample = quality.decoded(model, z, "mean"), quality.decoded(model, z, "sample")
    assert mean.shape == sample.shape == (50, 64) and mean.min() >= 0 and mean.max() <= 16
    assert torch.equal(sample, sample.round()) and sample.min() >= 0 and sample.max() <= 16


def test_a_run_writes_the_quality_metrics_figure_and_tensorboard_image(make_cfg, quality_cache):
    # Pictures on (figures.enabled=false turns the evaluation's figure off with the others).
    cfg = make_cfg(*QUICK, "figures.enabled=true", "trainer.max_epochs=1", "eval.quality.num_samples=200")
    assert cfg.eval.quality.cache_dir == str(quality_cache) == os.environ["VAELAB_CACHE"]
    vaelab.run(cfg)
    run_dir = ROOT / cfg.run_dir
    m = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test/precision", "test/recall", "test/classifier_accuracy"):
        assert 0 <= m[key] <= 1, key
    assert m["test/fid"] > 0 and -1 <= m["test/quality_density_spearman"] <= 1
    assert m["test/classifier_accuracy"] > 0.85
    assert m["eval"]["quality_num_samples"] == 200 and m["eval"]["quality_num_reference"] == 447
    assert 0 < m["eval"]["quality_seconds"] <= m["eval"]["seconds"] and m["eval"]["quality"]["k"] == 3
    assert (run_dir / "quality_vs_density.png").stat().st_size > 0
    events = EventAccumulator(str(run_dir / "tensorboard")).Reload()
    assert "quality/vs_density" in events.Tags()["images"]
    assert any(name.startswith("classifier_digits_") for name in os.listdir(quality_cache))


def test_quality_switched_off_measures_and_draws_nothing(make_cfg):
    cfg = make_cfg(*QUICK, "trainer.max_epochs=1", "eval.quality.enabled=false")
    vaelab.run(cfg)
    run_dir = ROOT / cfg.run_dir
    m = json.loads((run_dir / "metrics.json").read_text())
    assert not any(key in m for key in ("test/precision", "test/recall", "test/fid", "test/quality_density_spearman"))
    assert m["eval"]["quality"]["enabled"] is False and "quality_seconds" not in m["eval"]
    assert not (run_dir / "quality_vs_density.png").exists()
