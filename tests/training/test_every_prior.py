"""Every prior, end to end in one process: a short run of each trains (the validation loss goes down),
writes its run files, and draws every picture at every epoch, as PNG files and to TensorBoard. The
runs are the shared `prior_run`s (each trained once): 3 epochs of 16 batches, pictures at each epoch."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import PRIORS
from helpers.runs import PICTURE_SIZES, assert_picture, events, image_tags, scalars
from PIL import Image

pytestmark = pytest.mark.slow  # ten runs that draw every picture: end to end, if in one process
EPOCHS = 3  # trainer=fast
WITH_PSEUDO_INPUTS = {"vamp", "gtm_vamp", "vamp_data"}


@pytest.mark.parametrize("prior", PRIORS)
def test_every_prior_trains_and_the_validation_loss_goes_down(prior_run, prior):
    run_dir, metrics = prior_run(prior)
    val_loss = scalars(run_dir, "val/loss")
    assert len(val_loss) == EPOCHS  # one per epoch
    assert val_loss[-1] < val_loss[0]
    assert {"train/loss", "train/rec", "train/kl", "val/rec", "val/kl"} <= set(events(run_dir).Tags()["scalars"])
    written = json.loads((run_dir / "metrics.json").read_text())
    assert written["test/loss"] == pytest.approx(metrics["test/loss"])
    assert torch.isfinite(torch.tensor(written["test/loss"]))
    assert (run_dir / "checkpoints" / "last.ckpt").exists()
    assert (run_dir / written["best_checkpoint"]).exists()
    assert "_target_: vaelab.priors" in (run_dir / "config.yaml").read_text()


@pytest.mark.parametrize("prior", PRIORS)
def test_a_short_run_writes_every_picture_as_png_and_to_tensorboard(prior_run, prior):
    run_dir, _ = prior_run(prior)
    names = ["latent", "samples", "reconstructions"] + (["pseudo_inputs"] if prior in WITH_PSEUDO_INPUTS else [])
    for name in names:
        assert_picture(run_dir / f"{name}.png", PICTURE_SIZES[name])
        for epoch in range(1, EPOCHS + 1):
            assert_picture(run_dir / "figures" / f"{name}_epoch{epoch:03d}.png", PICTURE_SIZES[name])
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
