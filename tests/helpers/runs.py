"""Reading and preparing run directories: TensorBoard's scalars, images and hparams, the epoch lines
of the log, the pictures, a run saved without training, a checkpoint damaged on purpose, and an
encoder that gives q(z|x) but not its Gaussian parameters."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from torch import nn

import vaelab
from helpers import compose_config
from vaelab.nets import MLPEncoder

# The line a run logs at the end of an epoch when its output is not a terminal.
EPOCH_LINE = re.compile(
    r"epoch (\d+)/(\d+)  train/loss [\d.]+  val/loss [\d.]+ \(best [\d.]+\)  [\d.]+ s/epoch  [\d.]+ s$"
)


def epoch_lines(text: str) -> list[int]:
    """The epochs of the epoch lines in `text`."""
    return [int(match[1]) for line in text.splitlines() if (match := EPOCH_LINE.search(line))]


def events(run_dir: Path) -> EventAccumulator:
    """Every scalar and image of the run's TensorBoard event files, loaded."""
    accumulator = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def scalars(run_dir: Path, tag: str) -> list[float]:
    return [event.value for event in events(run_dir).Scalars(tag)]


def image_tags(run_dir: Path) -> dict[str, list[int]]:
    """Each image tag of the run and the steps it was written at."""
    accumulator = events(run_dir)
    return {tag: [event.step for event in accumulator.Images(tag)] for tag in accumulator.Tags()["images"]}


def tensorboard_hparams(run_dir: Path) -> dict:
    """The HPARAMS plugin's session-start record of a run: hyperparameter name → value."""
    content = events(run_dir).PluginTagToContent("hparams")["_hparams_/session_start_info"]
    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    return {
        key: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
        for key, value in data.session_start_info.hparams.items()
    }


# Tiles of 8x8 digits upscaled x4, 1 px (x4) padding: 8 tiles → (8 * 9 + 1) * 4 pixels.
GRID = (8 * 9 + 1) * 4
PICTURE_SIZES = {  # (width, height)
    "latent": (700, 500),
    "samples": (GRID, GRID),
    "reconstructions": (2 * GRID + 4 * 4, GRID),
    "pseudo_inputs": ((4 * 9 + 1) * 4, (4 * 9 + 1) * 4),  # 16 pseudo-inputs, 4x4
}


def assert_picture(path: Path, size: tuple[int, int]) -> None:
    """A PNG of `size` (width, height) that is not blank."""
    pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 255
    assert (pixels.shape[1], pixels.shape[0]) == size, path.name
    assert pixels.var() > 1e-3, f"{path.name} is blank"


def save_untrained_run(run_dir: Path, *overrides: str) -> Path:
    """A run directory with config.yaml and an untrained model's checkpoint, made without training
    (the config's `overrides` on top of trainer=fast): the checkpoint's path."""
    (run_dir / "checkpoints").mkdir(parents=True)
    cfg = compose_config("trainer=fast", f"run_dir={run_dir}", *overrides)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    model = vaelab.build(cfg)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            "pytorch-lightning_version": "2.6.0",
        },
        ckpt,
    )
    return ckpt


def corrupt(ckpt: Path, how: str) -> None:
    data = ckpt.read_bytes()
    if how == "truncated":
        ckpt.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        ckpt.write_bytes(b"not a checkpoint at all\n" * 10)
    elif how == "empty":
        ckpt.write_bytes(b"")
    elif how == "not_a_vae":
        torch.save({"weights": torch.zeros(3)}, ckpt)


class DistributionOnlyEncoder(nn.Module):
    """An encoder that gives q(z|x) but not its Gaussian parameters (as a flow posterior would):
    a VampPrior cannot put its pseudo-inputs through it. `encoder._target_=helpers.runs.DistributionOnlyEncoder`."""

    def __init__(self, **kwargs):
        super().__init__()
        self.inner = MLPEncoder(**kwargs)
        self.input_dim, self.latent_dim = self.inner.input_dim, self.inner.latent_dim

    def forward(self, x):
        return self.inner(x)
