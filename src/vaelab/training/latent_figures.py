"""`LatentFigures`: the pictures of `vaelab.figures`, drawn while training and at its end.

Every `every_n_epochs` epochs (after validation) and once when training ends, on rank zero only:

    latent          the prior density with the encoded test data on top (latent_dim = 2), or the
                    same in the plane of the two leading principal components of the encoded
                    test means with a density estimate of projected prior samples (latent_dim > 2)
    samples         64 draws z ~ p(z) shown as the decoder mean E[x|z]
    reconstructions test images (left) beside E[x | z = E[z|x]] (right)
    pseudo_inputs   the current pseudo-inputs of vamp and gtm_vamp priors

go to the experiment trackers that keep images (`vaelab.training.trackers.log_image`: TensorBoard, MLflow,
W&B; tags `latent/figure` and `images/<name>`; for latent_dim > 2 also the test latents with labels
and thumbnails in TensorBoard's projector, tag `latent/test`) and to PNG files:
`<run_dir>/figures/<name>_epochNNN.png` (NNN = epochs completed) and, at the end,
`<run_dir>/<name>.png`.

Drawing runs under `torch.random.fork_rng` with a fixed seed, so the samples are the same draws
from epoch to epoch and switching figures on or off does not change the training itself.

Only the model's part (encoding, the prior's density on a grid, decoding) runs between two
training epochs. Drawing the latent figure with matplotlib, writing the PNGs and sending them to
the trackers (most of a drawing's 0.2–0.4 s on a CPU) runs in one background thread while training
goes on, one drawing at a time; training's end and an exception wait for it. With a W&B logger it
runs in the training thread (W&B wants its steps in order).
"""

from __future__ import annotations

import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from numbers import Integral
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn

from vaelab import figures as F
from vaelab.errors import ConfigError
from vaelab.nets.hierarchy import top_level
from vaelab.training import trackers

__all__ = ["LatentFigures", "image_grids", "latent_view"]


@torch.no_grad()
def latent_view(
    model: pl.LightningModule, mu: torch.Tensor, y: torch.Tensor, grid_side: int = 128, num_prior_samples: int = 5000
) -> F.LatentView | None:
    """The latent figure's content for encoded test means `mu` = E[z|x] with labels `y`;
    None for latent_dim < 2."""
    if mu.shape[-1] < 2:
        return None
    joint = model.prior_dist()
    prior = top_level(joint)  # a hierarchical model's top level: z2, the prior's space
    axes = ("$z_1$", "$z_2$") if prior is joint else ("$z_{2,1}$", "$z_{2,2}$")  # (the top level's z2)
    samples = prior.sample((num_prior_samples,))
    means = model.prior.component_means(model.encoder) if hasattr(model.prior, "component_means") else None
    labels = y.cpu().numpy()
    if mu.shape[-1] == 2:
        points, means = mu.cpu().numpy(), None if means is None else means.cpu().numpy()
        low, high = F.plot_range(points, means, F.prior_mass(samples.cpu().numpy()))
        xs, ys, density = F.density_on_grid(prior, low, high, grid_side, device=mu.device)
        return F.LatentView(points, labels, xs, ys, density, means, axes)
    centre, basis, ratios = F.pca_basis(mu)
    project = lambda z: ((z - centre) @ basis.T).cpu().numpy()
    points, projected = project(mu), project(samples)
    means = None if means is None else project(means)
    low, high = F.plot_range(points, means, F.prior_mass(projected))
    xs, ys, density = F.kde_on_grid(projected, low, high, side=grid_side)
    axis_labels = tuple(f"PC{i + 1} of E[z|x] ({r:.0%} of variance)" for i, r in enumerate(ratios.tolist()))
    return F.LatentView(points, labels, xs, ys, density, means, axis_labels, "projected p(z)\n(density of\nsamples)")


def data_range(model: pl.LightningModule, x: torch.Tensor) -> tuple[float, float]:
    """The range of pixel values in data units: what the decoder's likelihood can produce."""
    decoder = model.decoder
    if getattr(decoder, "likelihood", None) == "categorical":
        return 0.0, float(decoder.num_levels - 1)
    if getattr(decoder, "likelihood", None) == "bernoulli":
        return 0.0, 1.0
    return float(x.min()), float(x.max())


def sprite_images(images: torch.Tensor, pad_value: float = 0.5) -> torch.Tensor:
    """(N, H, W) grey or (N, H, W, C) colour images → (N, C, S, S), S = max(H, W), as the projector's
    sprite takes them: channels first, and square (a non-square image is centred on a grey square)."""
    images = images[:, None] if images.dim() == 3 else images.permute(0, 3, 1, 2)
    h, w = images.shape[-2:]
    side = max(h, w)
    if h == w:
        return images
    square = torch.full((*images.shape[:2], side, side), pad_value, dtype=images.dtype)
    top, left = (side - h) // 2, (side - w) // 2
    square[..., top : top + h, left : left + w] = images
    return square


@torch.no_grad()
def image_grids(
    model: pl.LightningModule, x: torch.Tensor, image_shape, num_samples: int = 64, min_tile: int = 32
) -> dict[str, np.ndarray]:
    """{"samples", "reconstructions"[, "pseudo_inputs"]} → (H, W) grey or (H, W, C) colour pictures
    in [0, 1], tiles upscaled (nearest neighbour) to at least `min_tile` pixels."""
    low, high = data_range(model, x)
    decoder_mean = getattr(model.decoder, "mean", None) or (lambda z: model.decode(z).mean)
    unit = lambda images: F.to_unit(images, low, high, image_shape)
    x = x[:num_samples]
    reconstructions = decoder_mean(model.encode(x).mean)
    grids = {
        "samples": F.tile(unit(decoder_mean(model.prior_dist().sample((num_samples,)))), ncols=8),
        "reconstructions": F.side_by_side(F.tile(unit(x), ncols=8), F.tile(unit(reconstructions), ncols=8)),
    }
    if hasattr(model.prior, "pseudo_inputs"):
        prior = model.prior  # pseudo-inputs live in the data range [input_min, input_max]
        u_range = getattr(prior, "input_min", low), getattr(prior, "input_max", high)
        grids["pseudo_inputs"] = F.tile(F.to_unit(prior.pseudo_inputs(), *u_range, image_shape))
    return {name: F.upscale(grid, min_tile, image_shape[0]) for name, grid in grids.items()}


class LatentFigures(pl.Callback):
    """Draws the figures of this module every `every_n_epochs` epochs and at the end of training.

    `dirpath` is where PNGs go (the run directory; the trainer's default_root_dir when None). The
    test split of the datamodule (`datamodule.splits["test"]`, else "val") is encoded, at most
    `max_points` examples of it, evenly spaced through the split, coloured by their labels y.
    """

    def __init__(
        self, dirpath: str | Path | None = None, every_n_epochs: int = 10, max_points: int = 2000, grid_side: int = 128
    ):
        if not isinstance(every_n_epochs, Integral) or isinstance(every_n_epochs, bool) or every_n_epochs < 1:
            raise ConfigError(f"figures.every_n_epochs={every_n_epochs!r} is not allowed: must be a positive integer")
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self.every_n_epochs, self.max_points, self.grid_side = int(every_n_epochs), max_points, grid_side
        self._last: tuple[int, dict[str, Path]] | None = None  # (global step, files) of the last drawing
        self._executor: ThreadPoolExecutor | None = None
        self._pending: tuple[Future, str] | None = None  # the drawing in the background thread, and when

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epochs = trainer.current_epoch + 1
        if trainer.sanity_checking or trainer.state.fn != "fit" or epochs % self.every_n_epochs:
            return
        if trainer.is_global_zero:
            self.draw(trainer, pl_module, f"figures/{{name}}_epoch{epochs:03d}.png", f"epoch {epochs}")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # on_train_end, not on_fit_end: the TensorBoard writer is still open here.
        if not trainer.is_global_zero:
            return
        self.wait()
        if self._last is not None and self._last[0] == trainer.global_step:  # drawn after the last epoch already
            for name, path in self._last[1].items():
                shutil.copyfile(path, self.output_dir(trainer) / f"{name}.png")
            return
        self.draw(trainer, pl_module, "{name}.png", f"end of training, epoch {trainer.current_epoch}")

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.wait()  # a signal or an error: the files of the drawing under way are finished first

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.wait()
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None

    def wait(self) -> None:
        """Finish the drawing under way in the background thread, if any (its failure is a warning)."""
        if self._pending is None:
            return
        (future, when), self._pending = self._pending, None
        try:
            future.result()
        except Exception as error:  # noqa: BLE001
            self._last = None  # training's end draws again rather than copy what is not there
            rank_zero_warn(f"LatentFigures: no pictures at {when}: {type(error).__name__}: {error}")

    def test_data(self, trainer: pl.Trainer) -> tuple[torch.Tensor, torch.Tensor] | None:
        splits = getattr(trainer.datamodule, "splits", None) or {}
        x, y = splits.get("test") or splits.get("val") or (None, None)
        if x is None:
            rank_zero_warn("LatentFigures: the datamodule has no splits['test'] or ['val']; drawing nothing")
            return None
        # Evenly spaced, not the first max_points: a split in class order (binarized MNIST's test
        # file) would otherwise show its first two digits only.
        index = torch.linspace(0, len(x) - 1, min(len(x), self.max_points)).round().long()
        return x[index], y[index]

    def draw(self, trainer: pl.Trainer, model: pl.LightningModule, file_pattern: str, when: str) -> None:
        """Draw everything, save it as `file_pattern.format(name=...)` and log it to the trackers.
        A picture that cannot be drawn (say, a diverged model's NaN latents) is a warning, not the
        end of the training run."""
        try:
            self._draw(trainer, model, file_pattern, when)
        except Exception as error:  # noqa: BLE001
            rank_zero_warn(f"LatentFigures: no pictures at {when}: {type(error).__name__}: {error}")

    def _draw(self, trainer: pl.Trainer, model: pl.LightningModule, file_pattern: str, when: str) -> None:
        data = self.test_data(trainer)
        if data is None:
            return
        x, y = (t.to(model.device) for t in data)
        image_shape = model.hparams.get("image_shape")
        was_training = model.training
        model.eval()
        devices = [model.device.index or 0] if model.device.type == "cuda" else []
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=devices):
                torch.manual_seed(0)
                mu = top_level(model.encode(x)).mean
                view = latent_view(model, mu, y, self.grid_side)
                pictures = image_grids(model, x, image_shape) if image_shape else {}
        finally:
            model.train(was_training)
        names = [*pictures, *(["latent"] if view is not None else [])]
        files = {name: self.output_dir(trainer) / file_pattern.format(name=name) for name in names}
        step = trainer.global_step
        self._last = step, files
        projector = None
        if mu.shape[-1] > 2:  # TensorBoard's projector, for what the PCA plane cannot show
            # Thumbnails at their own size: the sprite is re-encoded at every step, and the projector scales it.
            thumbnails = F.to_unit(data[0], *data_range(model, x), image_shape) if image_shape else None
            projector = (
                mu.cpu(),
                data[1].tolist(),
                None if thumbnails is None else sprite_images(torch.from_numpy(thumbnails)),
            )
        top = getattr(model.prior, "top", None)  # a hierarchical model: the prior on z2
        title = f"{type(model.prior).__name__ if top is None else type(top).__name__ + ' on z2'}, {when}"
        job = lambda: self._finish(trainer.loggers, pictures, view, title, files, step, projector)
        self.wait()  # one drawing at a time, in order
        if any(type(logger).__name__ == "WandbLogger" for logger in trainer.loggers):
            job()
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vaelab-figures")
        self._pending = self._executor.submit(job), when

    @staticmethod
    def _finish(
        loggers,
        pictures: dict[str, np.ndarray],
        view: F.LatentView | None,
        title: str,
        files: dict[str, Path],
        step: int,
        projector,
    ) -> None:
        """The part of a drawing that needs no model: matplotlib, the PNG files, the trackers. The
        image grids are saved first, so a latent figure that cannot be drawn loses nothing else."""
        for name, image in pictures.items():
            F.save_png(image, files[name])
            trackers.log_image(loggers, f"images/{name}", image, step)
        if view is not None:
            image = F.render(F.latent_figure(view, title=title))
            F.save_png(image, files["latent"])
            trackers.log_image(loggers, "latent/figure", image, step)
        writer = next((lg.experiment for lg in loggers if type(lg).__name__ == "TensorBoardLogger"), None)
        if writer is not None and projector is not None:
            embedding, metadata, label_img = projector
            writer.add_embedding(embedding, metadata=metadata, global_step=step, tag="latent/test", label_img=label_img)

    def output_dir(self, trainer: pl.Trainer) -> Path:
        return self.dirpath if self.dirpath is not None else Path(trainer.default_root_dir)
