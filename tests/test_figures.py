"""The figures: what a run writes (PNGs, TensorBoard tags, the projector), and the maths of the plots."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import PRIORS
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.distributions import Independent, Normal

import vaelab
from vaelab import figures as F
from vaelab.errors import ConfigError
from vaelab.training.latent_figures import LatentFigures, latent_view

# trainer=fast with whole epochs (16 batches): after 4 batches the decoder's samples are still
# uniform grey, which the blank check below would rightly flag.
FAST = ("figures.every_n_epochs=1", "eval.num_samples=10", "eval.exact=false", "trainer.limit_train_batches=1.0")
EPOCHS = 3  # trainer=fast
WITH_PSEUDO_INPUTS = {"vamp", "gtm_vamp", "vamp_data"}
# Tiles of 8x8 digits upscaled x4, 1 px (x4) padding: 8 tiles → (8 * 9 + 1) * 4 pixels.
GRID = (8 * 9 + 1) * 4
SIZES = {  # (width, height)
    "latent": (700, 500),
    "samples": (GRID, GRID),
    "reconstructions": (2 * GRID + 4 * 4, GRID),
    "pseudo_inputs": ((4 * 9 + 1) * 4, (4 * 9 + 1) * 4),  # 16 pseudo-inputs, 4x4
}


def image_tags(run_dir) -> dict[str, list[int]]:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return {tag: [event.step for event in events.Images(tag)] for tag in events.Tags()["images"]}


def assert_picture(path, size) -> None:
    pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 255
    assert (pixels.shape[1], pixels.shape[0]) == size, path.name
    assert pixels.var() > 1e-3, f"{path.name} is blank"


@pytest.mark.parametrize("prior", PRIORS)
def test_a_short_run_writes_every_picture_as_png_and_to_tensorboard(make_cfg, tmp_path, prior):
    vaelab.run(make_cfg(f"prior={prior}", *FAST))
    run_dir = tmp_path / "run"
    names = ["latent", "samples", "reconstructions"] + (["pseudo_inputs"] if prior in WITH_PSEUDO_INPUTS else [])
    for name in names:
        assert_picture(run_dir / f"{name}.png", SIZES[name])
        for epoch in range(1, EPOCHS + 1):
            assert_picture(run_dir / "figures" / f"{name}_epoch{epoch:03d}.png", SIZES[name])
    assert not (run_dir / "pseudo_inputs.png").exists() or prior in WITH_PSEUDO_INPUTS
    # Training ended right after the last epoch's drawing: the final pictures are that drawing.
    assert (run_dir / "latent.png").read_bytes() == (run_dir / f"figures/latent_epoch{EPOCHS:03d}.png").read_bytes()

    tags = image_tags(run_dir)
    assert tags.pop("quality/vs_density") == [EPOCHS]  # the evaluation's one figure (vaelab.quality)
    assert_picture(run_dir / "quality_vs_density.png", Image.open(run_dir / "quality_vs_density.png").size)
    expected = {"latent/figure"} | {f"images/{name}" for name in names if name != "latent"}
    assert set(tags) == expected
    # One picture per epoch; the end of training falls on the last epoch's step and is not repeated.
    assert all(len(steps) == EPOCHS and steps == sorted(set(steps)) for steps in tags.values()), tags


def test_pictures_come_every_n_epochs_and_once_more_at_the_end(make_cfg, tmp_path):
    vaelab.run(make_cfg(*FAST, "figures.every_n_epochs=2"))
    run_dir = tmp_path / "run"
    assert sorted(p.name for p in (run_dir / "figures").glob("latent_*.png")) == ["latent_epoch002.png"]
    assert (run_dir / "latent.png").read_bytes() != (run_dir / "figures/latent_epoch002.png").read_bytes()
    steps_per_epoch = 16  # 1000 training digits in batches of 64
    assert image_tags(run_dir)["latent/figure"] == [2 * steps_per_epoch, 3 * steps_per_epoch]


def test_figures_disabled_writes_no_pictures(make_cfg, tmp_path):
    cfg = make_cfg("figures.enabled=false", *FAST)
    vaelab.run(cfg)
    assert not list(tmp_path.rglob("*.png"))
    assert image_tags(tmp_path / "run") == {}


def test_latent_dim_5_draws_the_pca_plane_and_fills_the_projector(make_cfg, tmp_path):
    vaelab.run(make_cfg("latent_dim=5", "prior=mog", *FAST))
    run_dir = tmp_path / "run"
    assert_picture(run_dir / "latent.png", SIZES["latent"])
    assert "latent/figure" in image_tags(run_dir)

    config = (run_dir / "tensorboard" / "projector_config.pbtxt").read_text()
    assert config.count('tensor_name: "latent/test:') == EPOCHS
    embedding = sorted((run_dir / "tensorboard").glob("*/latent%2ftest"))[-1]
    rows = (embedding / "tensors.tsv").read_text().splitlines()
    labels = (embedding / "metadata.tsv").read_text().splitlines()
    assert len(rows) == len(labels) == 447 and len(rows[0].split("\t")) == 5  # the digits test split
    assert set(labels) == {str(d) for d in range(10)}
    assert Image.open(embedding / "sprite.png").size == (22 * 8, 22 * 8)  # 447 thumbnails of 8x8, 22 a row


def test_drawing_does_not_change_the_training(make_cfg, tmp_path):
    """Figures draw their samples under a forked RNG: switching them on or off gives the same run."""
    on = vaelab.run(make_cfg("prior=vamp", *FAST))
    (tmp_path / "run").rename(tmp_path / "on")
    off = vaelab.run(make_cfg("prior=vamp", "figures.enabled=false", *FAST))
    assert on["test/loss"] == off["test/loss"] and on["best_val_loss"] == off["best_val_loss"]


def test_a_picture_that_cannot_be_drawn_is_a_warning_not_the_end_of_training(make_cfg, monkeypatch):
    def diverged(*clouds, **kwargs):
        raise ValueError("no finite latent points to plot")

    monkeypatch.setattr(F, "plot_range", diverged)
    with pytest.warns(UserWarning, match="LatentFigures: no pictures at epoch 1: ValueError: no finite"):
        metrics = vaelab.run(make_cfg(*FAST))
    assert metrics["epochs"] == EPOCHS


def test_matplotlib_and_the_files_run_beside_training_and_their_failure_is_a_warning(make_cfg, monkeypatch):
    """The latent figure is rendered and saved in the background thread; a failure there is a
    warning for that epoch's drawing, and the other pictures and epochs still come."""
    threads, save_png = set(), F.save_png

    def record(image, path):
        threads.add(__import__("threading").current_thread().name)
        save_png(image, path)

    def broken(fig):
        raise RuntimeError("Agg is out of memory")

    monkeypatch.setattr(F, "save_png", record)
    monkeypatch.setattr(F, "render", broken)
    with pytest.warns(UserWarning, match="LatentFigures: no pictures at epoch 1: RuntimeError: Agg is out"):
        metrics = vaelab.run(make_cfg(*FAST))
    assert metrics["epochs"] == EPOCHS
    assert {name.split("_")[0] for name in threads} == {"vaelab-figures"}


def test_only_rank_zero_draws(tmp_path):
    trainer = SimpleNamespace(
        is_global_zero=False, sanity_checking=False, current_epoch=9, state=SimpleNamespace(fn="fit")
    )
    callback = LatentFigures(tmp_path, every_n_epochs=10)
    callback.on_validation_epoch_end(trainer, pl_module=None)
    callback.on_train_end(trainer, pl_module=None)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("every", [0, -1, 2.5, True])
def test_every_n_epochs_must_be_a_positive_integer(every):
    with pytest.raises(ConfigError, match="figures.every_n_epochs"):
        LatentFigures(every_n_epochs=every)


# -- the maths of the plots ------------------------------------------------------------------


@pytest.mark.parametrize("prior", ["mog", "vamp"])
@pytest.mark.parametrize("latent_dim", [2, 5])
def test_the_latent_view_covers_the_test_points_the_component_means_and_the_prior_mass(make_cfg, prior, latent_dim):
    model = vaelab.build(make_cfg(f"prior={prior}", f"latent_dim={latent_dim}")).eval()
    x, y = torch.rand(300, 64) * 16, torch.arange(300) % 10
    view = latent_view(model, model.encode(x).mean, y)
    box = lambda p: np.all((p >= [view.xs[0], view.ys[0]]) & (p <= [view.xs[-1], view.ys[-1]]))
    assert view.points.shape == (300, 2) and box(view.points)
    assert view.means.shape == (16, 2) and box(view.means)
    assert view.density.shape == (len(view.ys), len(view.xs)) and np.all(np.isfinite(view.density))
    assert view.density.max() > 10 * view.density[0, 0]  # the prior's mass is inside, not at the edge


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
    assert F.upscale(images, min_tile=8, tile_side=2).shape == (7, 8, 12)


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
