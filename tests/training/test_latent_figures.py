"""The pictures a run draws while it trains (`LatentFigures`): every n epochs and at the end, none
when switched off and no change to the training, the PCA plane and the projector above two latent
dimensions, a failure that is a warning, and the latent view's extent."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import CHEAP_EVAL, PICTURE_RUN, compose_config
from helpers.runs import PICTURE_SIZES, assert_picture, image_tags
from PIL import Image

import vaelab
from vaelab import figures as F
from vaelab.errors import ConfigError
from vaelab.training.latent_figures import LatentFigures, latent_view, sprite_images

EPOCHS = 3  # trainer=fast
# Pictures at every epoch of trainer=fast, with an evaluation that takes a fraction of a second.
EVERY_EPOCH = ("figures.every_n_epochs=1", *CHEAP_EVAL)
# The same with whole epochs (16 batches): after 4 the decoder's samples are still uniform grey.
WHOLE_EPOCHS = (*EVERY_EPOCH, "trainer.limit_train_batches=1.0")


@pytest.mark.slow  # a run of whole epochs with pictures
def test_pictures_come_every_n_epochs_and_once_more_at_the_end(make_cfg, tmp_path):
    vaelab.run(make_cfg(*WHOLE_EPOCHS, "figures.every_n_epochs=2"))
    run_dir = tmp_path / "run"
    assert sorted(p.name for p in (run_dir / "figures").glob("latent_*.png")) == ["latent_epoch002.png"]
    assert (run_dir / "latent.png").read_bytes() != (run_dir / "figures/latent_epoch002.png").read_bytes()
    steps_per_epoch = 16  # 1000 training digits in batches of 64
    assert image_tags(run_dir)["latent/figure"] == [2 * steps_per_epoch, 3 * steps_per_epoch]


@pytest.fixture(scope="module")
def figures_off(tmp_path_factory):
    """`prior_run("vamp")` again with figures.enabled=false: (run directory, metrics)."""
    run_dir = tmp_path_factory.mktemp("figures_off") / "run"
    return run_dir, vaelab.run(
        compose_config(*PICTURE_RUN, "prior=vamp", "figures.enabled=false", f"run_dir={run_dir}")
    )


@pytest.mark.slow  # a run of whole epochs with pictures
def test_figures_disabled_writes_no_pictures(figures_off):
    """Not even the evaluation's figure (the sample quality is evaluated in this run)."""
    run_dir, metrics = figures_off
    assert "test/fid" in metrics
    assert not list(run_dir.parent.rglob("*.png"))
    assert image_tags(run_dir) == {}


@pytest.mark.slow  # a run of whole epochs with pictures
def test_drawing_does_not_change_the_training(prior_run, figures_off):
    """Figures draw their samples under a forked RNG: switching them on or off gives the same run."""
    _, on = prior_run("vamp")
    _, off = figures_off
    assert on["test/loss"] == off["test/loss"] and on["best_val_loss"] == off["best_val_loss"]


@pytest.mark.slow  # a run of whole epochs with pictures
def test_latent_dim_5_draws_the_pca_plane_and_fills_the_projector(make_cfg, tmp_path):
    vaelab.run(make_cfg("latent_dim=5", "prior=mog", *WHOLE_EPOCHS))
    run_dir = tmp_path / "run"
    assert_picture(run_dir / "latent.png", PICTURE_SIZES["latent"])
    assert "latent/figure" in image_tags(run_dir)

    config = (run_dir / "tensorboard" / "projector_config.pbtxt").read_text()
    assert config.count('tensor_name: "latent/test:') == EPOCHS
    embedding = sorted((run_dir / "tensorboard").glob("*/latent%2ftest"))[-1]
    rows = (embedding / "tensors.tsv").read_text().splitlines()
    labels = (embedding / "metadata.tsv").read_text().splitlines()
    assert len(rows) == len(labels) == 447 and len(rows[0].split("\t")) == 5  # the digits test split
    assert set(labels) == {str(d) for d in range(10)}
    assert Image.open(embedding / "sprite.png").size == (22 * 8, 22 * 8)  # 447 thumbnails of 8x8, 22 a row


def test_the_projector_gets_square_thumbnails_channels_first():
    grey = torch.arange(2 * 4 * 2, dtype=torch.float32).reshape(2, 4, 2)  # (N, H, W), taller than wide
    square = sprite_images(grey)
    assert square.shape == (2, 1, 4, 4)
    assert torch.equal(square[:, 0, :, 1:3], grey) and (square[:, 0, :, [0, 3]] == 0.5).all()
    colour = torch.rand(2, 2, 4, 3)  # (N, H, W, C), wider than tall
    square = sprite_images(colour)
    assert square.shape == (2, 3, 4, 4) and torch.equal(square[:, :, 1:3, :], colour.permute(0, 3, 1, 2))


def test_a_picture_that_cannot_be_drawn_is_a_warning_not_the_end_of_training(make_cfg, monkeypatch):
    def diverged(*clouds, **kwargs):
        raise ValueError("no finite latent points to plot")

    monkeypatch.setattr(F, "plot_range", diverged)
    with pytest.warns(UserWarning, match="LatentFigures: no pictures at epoch 1: ValueError: no finite"):
        metrics = vaelab.run(make_cfg(*EVERY_EPOCH))
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
        metrics = vaelab.run(make_cfg(*EVERY_EPOCH))
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
