"""Pictures of a trained VAE: the latent space over the prior's density, and image grids.

Pure functions from tensors to numpy images or matplotlib Figures; `vaelab.training.latent_figures.LatentFigures`
calls them during training. Figures are built with `matplotlib.figure.Figure` and rendered by the
Agg canvas directly, so pyplot (a GUI backend, global state, figures to close) is never involved.

The latent figure is the picture of the blog post "Priors in VAEs" (J. M. Tomczak), Figures 4–9:
the prior density p(z) as filled contours with the encoded test data E[z|x] on top.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from PIL import Image
from torch.distributions import Distribution

__all__ = [
    "LatentView",
    "density_on_grid",
    "kde_on_grid",
    "latent_figure",
    "pca_basis",
    "plot_range",
    "prior_mass",
    "render",
    "save_png",
    "side_by_side",
    "tile",
    "to_unit",
    "upscale",
]


@dataclass
class LatentView:
    """What the latent figure shows, already in the 2-D plane of the plot."""

    points: np.ndarray  # (N, 2) encoded test means
    labels: np.ndarray  # (N,) integer class labels
    xs: np.ndarray  # (G,) grid axes of the density
    ys: np.ndarray  # (G,)
    density: np.ndarray  # (G, G), density[i, j] at (xs[j], ys[i])
    means: np.ndarray | None = None  # (K, 2) component means, or None
    axis_labels: tuple[str, str] = ("$z_1$", "$z_2$")
    density_label: str = "p(z)\n(contours)"


def plot_range(*clouds: np.ndarray, margin: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis (low, high) covering every finite point of every (N, 2) cloud, widened by `margin`."""
    stacked = np.concatenate([c for c in clouds if c is not None and len(c)], axis=0)
    stacked = stacked[np.isfinite(stacked).all(axis=1)]
    if not len(stacked):
        raise ValueError("no finite latent points to plot")
    low, high = stacked.min(axis=0), stacked.max(axis=0)
    pad = margin * np.maximum(high - low, 1e-3)
    return low - pad, high + pad


def prior_mass(samples: np.ndarray, percent: float = 0.5) -> np.ndarray:
    """The two corners of the box holding the central mass of prior samples (per-axis percentiles);
    robust to the far tail samples that would otherwise stretch the plot."""
    return np.percentile(samples, [percent, 100 - percent], axis=0)


@torch.no_grad()
def density_on_grid(
    prior: Distribution, low, high, side: int = 128, device: torch.device | str = "cpu"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """exp(log p(z)) on a side x side grid over the box [low, high] of a 2-D latent space."""
    xs, ys = (torch.linspace(float(low[d]), float(high[d]), side) for d in range(2))
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=-1)
    log_p = prior.log_prob(grid.to(device)).reshape(side, side).cpu()
    return xs.numpy(), ys.numpy(), torch.exp(log_p).nan_to_num(0.0).numpy()


def pca_basis(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(centre, the two leading principal directions as rows (2, D), their explained variance ratios)."""
    centre = points.mean(dim=0)
    _, s, vh = torch.linalg.svd(points - centre, full_matrices=False)
    ratios = s**2 / (s**2).sum().clamp_min(1e-12)
    return centre, vh[:2], ratios[:2]


def kde_on_grid(samples: np.ndarray, low, high, side: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A binned Gaussian kernel density estimate of (S, 2) samples on a side x side grid.

    The samples are histogrammed and the histogram smoothed by one Gaussian kernel matrix per axis
    (density = Ky @ H @ Kx.T), with Scott's bandwidth n^(-1/6) * std per axis.
    """
    xs, ys = np.linspace(low[0], high[0], side), np.linspace(low[1], high[1], side)
    step = np.array([xs[1] - xs[0], ys[1] - ys[0]])
    edges = [np.append(a - s / 2, a[-1] + s / 2) for a, s in zip((xs, ys), step)]
    hist, _, _ = np.histogram2d(samples[:, 1], samples[:, 0], bins=[edges[1], edges[0]])
    bandwidth = np.maximum(samples.std(axis=0) * len(samples) ** (-1 / 6), step)

    def kernel(axis: np.ndarray, h: float) -> np.ndarray:
        k = np.exp(-0.5 * ((axis[:, None] - axis[None, :]) / h) ** 2)
        return k / (math.sqrt(2 * math.pi) * h)

    density = kernel(ys, bandwidth[1]) @ hist @ kernel(xs, bandwidth[0]).T / len(samples)
    return xs, ys, density


def latent_figure(view: LatentView, title: str = "", dpi: int = 100) -> Figure:
    """Filled contours of the density, test points coloured by label, component means as crosses."""
    # A fixed layout and no colour bar: laying out text is most of the drawing time (the cost that
    # counts here); constrained layout would add about 60% to it, a colour bar about 30%.
    fig = Figure(figsize=(7.0, 5.0), dpi=dpi)
    ax = fig.add_axes((0.1, 0.1, 0.68, 0.83))
    ax.contourf(view.xs, view.ys, view.density, levels=16, cmap="Greys")
    known = view.labels >= 0  # y = -1: no label (binarized MNIST's train and validation images)
    if not known.any():  # one colour
        points = ax.scatter(*view.points.T, c="tab:blue", s=9, alpha=0.6, linewidths=0)
        handles, names, legend_title = [points], ["test\nE[z|x]"], None
    else:
        palette = 10 if view.labels.max(initial=0) < 10 else 20  # qualitative colours, one per class
        points = ax.scatter(
            *view.points[known].T,
            c=view.labels[known],
            cmap=f"tab{palette}",
            vmin=-0.5,
            vmax=palette - 0.5,
            s=9,
            alpha=0.85,
            linewidths=0,
        )
        handles, _ = points.legend_elements(num=None)
        names, legend_title = [str(int(label)) for label in np.unique(view.labels[known])], "label"
        if not known.all():  # the unlabelled ones in grey, under their own entry
            handles.append(ax.scatter(*view.points[~known].T, c="0.5", s=9, alpha=0.6, linewidths=0))
            names.append("no label")
    if view.means is not None:
        handles.append(ax.scatter(*view.means.T, marker="X", s=55, c="red", edgecolors="white", linewidths=0.8))
        names.append("component\nmeans")
    handles.append(Patch(facecolor="0.35", edgecolor="0.75"))
    names.append(view.density_label)
    fig.legend(
        handles,
        names,
        title=legend_title,
        loc="upper left",
        bbox_to_anchor=(0.79, 0.95),
        fontsize="small",
        frameon=False,
    )
    ax.set(
        xlim=(view.xs[0], view.xs[-1]),
        ylim=(view.ys[0], view.ys[-1]),
        xlabel=view.axis_labels[0],
        ylabel=view.axis_labels[1],
        title=title,
    )
    ax.locator_params(nbins=6)  # fewer tick labels, less text to lay out
    return fig


def render(fig: Figure) -> np.ndarray:
    """The figure's pixels, (H, W, 3) uint8, drawn once by the Agg canvas."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def tile(images: np.ndarray, ncols: int | None = None, pad: int = 1, pad_value: float = 0.5) -> np.ndarray:
    """(N, H, W) grey or (N, H, W, C) colour images in [0, 1] → one grid of
    (rows*(H+pad)+pad, ncols*(W+pad)+pad[, C]) pixels, row-major."""
    n, h, w = images.shape[:3]
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, *images.shape[3:]), pad_value, dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        grid[pad + r * (h + pad) : (r + 1) * (h + pad), pad + c * (w + pad) : (c + 1) * (w + pad)] = image
    return grid


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 4, pad_value: float = 1.0) -> np.ndarray:
    """Two equally tall grids (grey or colour) with a `gap`-pixel separator column between them."""
    separator = np.full((left.shape[0], gap, *left.shape[2:]), pad_value, dtype=left.dtype)
    return np.concatenate([left, separator, right], axis=1)


def upscale(grid: np.ndarray, min_tile: int, tile_side: int) -> np.ndarray:
    """Nearest-neighbour upscaling of a (H, W) or (H, W, C) picture, so that a tile of `tile_side`
    pixels becomes at least `min_tile` pixels (8x8 digits are invisible at their own size)."""
    factor = max(1, math.ceil(min_tile / tile_side))
    return grid.repeat(factor, axis=0).repeat(factor, axis=1)


def to_unit(x: torch.Tensor, low: float, high: float, shape) -> np.ndarray:
    """Flat images in data units [low, high] → (N, H, W) or, for a shape (H, W, C), (N, H, W, C)
    floats in [0, 1]."""
    x = ((x.detach().float().cpu() - low) / max(high - low, 1e-12)).clamp(0, 1)
    return x.reshape(-1, *shape).numpy()


def save_png(image: np.ndarray, path: Path) -> None:
    """Save a (H, W) or (H, W, 3) float image in [0, 1], or a uint8 one, as PNG, pixel for pixel."""
    if image.dtype != np.uint8:
        image = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, compress_level=1)  # the fastest level: larger files, a fraction of the time
