"""The maths of the plots (`vaelab.figures`): densities on grids that integrate to one, PCA, the plot
range, tiles of images, and the legend."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.distributions import Independent, Normal

from vaelab import figures as F


def test_the_density_grid_of_a_standard_normal_integrates_to_one():
    xs, ys, density = F.density_on_grid(Independent(Normal(torch.zeros(2), torch.ones(2)), 1), [-6, -6], [6, 6])
    assert np.trapezoid(np.trapezoid(density, xs, axis=1), ys) == pytest.approx(1.0, abs=1e-3)
    assert density[64, 64] > density[0, 0]  # the mode is in the middle


def test_the_kde_of_prior_samples_integrates_to_one_and_finds_the_mode():
    samples = np.random.default_rng(0).normal([2.0, -1.0], [1.0, 0.5], size=(5000, 2))
    xs, ys, density = F.kde_on_grid(samples, [-3, -4], [7, 2])
    assert np.trapezoid(np.trapezoid(density, xs, axis=1), ys) == pytest.approx(1.0, abs=0.02)
    i, j = np.unravel_index(density.argmax(), density.shape)
    assert (xs[j], ys[i]) == (pytest.approx(2.0, abs=0.3), pytest.approx(-1.0, abs=0.3))


def test_pca_finds_the_direction_of_largest_variance():
    points = torch.randn(2000, 5) * torch.tensor([0.1, 3.0, 0.1, 1.0, 0.1])
    _, basis, ratios = F.pca_basis(points)
    assert basis[0].abs().argmax() == 1 and basis[1].abs().argmax() == 3
    assert ratios[0] > ratios[1] > 0.05


def test_the_plot_range_covers_every_cloud_with_a_margin():
    low, high = F.plot_range(np.array([[0.0, 0.0], [1.0, 2.0]]), None, np.array([[-1.0, 1.0], [0.5, 4.0]]))
    assert np.all(low < [-1.0, 0.0]) and np.all(high > [1.0, 4.0])


def test_tile_places_image_i_at_row_i_div_ncols():
    images = np.stack([np.full((2, 3), i / 10) for i in range(7)])
    grid = F.tile(images, ncols=3, pad=1)
    assert grid.shape == (3 * 3 + 1, 3 * 4 + 1)
    assert grid[1 + 2 * 3, 1 + 0 * 4] == pytest.approx(0.6)  # image 6: row 2, column 0
    assert F.upscale(grid, min_tile=8, tile_side=2).shape == (4 * (3 * 3 + 1), 4 * (3 * 4 + 1))
    assert F.upscale(grid, min_tile=8, tile_side=2)[4 * (1 + 2 * 3) + 3, 4 * 1] == pytest.approx(0.6)


def test_colour_images_tile_side_by_side_upscale_and_save_as_rgb(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(5, 2, 3, 3))  # (N, H, W, C)
    grid = F.tile(images, ncols=2, pad=1)
    assert grid.shape == (3 * 3 + 1, 2 * 4 + 1, 3)
    assert np.array_equal(grid[1 + 3 : 1 + 3 + 2, 1 + 4 : 1 + 4 + 3], images[3].astype(np.float32))  # row 1, column 1
    both = F.side_by_side(grid, grid, gap=2)
    assert both.shape == (10, 2 * 9 + 2, 3) and np.all(both[:, 9:11] == 1.0)
    big = F.upscale(both, min_tile=6, tile_side=2)
    assert big.shape == (30, 60, 3) and np.array_equal(big[::3, ::3], both)
    F.save_png(big, tmp_path / "colour.png")
    with Image.open(tmp_path / "colour.png") as saved:
        assert saved.mode == "RGB" and saved.size == (60, 30)
        assert np.array_equal(np.asarray(saved), np.round(big * 255).astype(np.uint8))
    flat = torch.from_numpy(images.reshape(5, -1) * 255)
    assert np.allclose(F.to_unit(flat, 0, 255, [2, 3, 3]), images)


@pytest.mark.parametrize("labels, entries, title", [
    (np.full(50, -1), ["test\nE[z|x]"], None),  # no labels (binarized MNIST): one colour, no "-1"
    (np.arange(50) % 3, ["0", "1", "2"], "label"),
    (np.arange(50) % 3 - (np.arange(50) < 10), ["0", "1", "2", "no label"], "label"),  # some -1: grey, last
])  # fmt: skip
def test_the_legend_lists_the_classes_or_one_entry_for_unlabelled_data(labels, entries, title):
    xs = ys = np.linspace(-3, 3, 20)
    view = F.LatentView(np.random.default_rng(0).normal(size=(50, 2)), labels, xs, ys, np.ones((20, 20)), None)
    (legend,) = F.latent_figure(view).legends
    assert [text.get_text() for text in legend.get_texts()] == entries + [view.density_label]
    assert (legend.get_title().get_text() or None) == title
