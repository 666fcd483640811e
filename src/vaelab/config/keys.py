"""What each config key may hold: one table per kind of check, read by `vaelab.config.check`.

A key a config does not have is skipped, so the tables cover every group's options at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

from vaelab.nets import ACTIVATIONS, LIKELIHOODS
from vaelab.priors import PSEUDO_INPUT_INITS

DATA_TYPES = ("auto", "binary", "levels", "continuous")  # dataset.type of one's own data (vaelab.data.own)

__all__ = [
    "CHECKS",
    "CHOICES",
    "NON_NEGATIVE_INTS",
    "ORDERED",
    "POSITIVE_INTS",
    "POSITIVE_REALS",
    "SAME_AS",
    "SECTIONS",
]


def is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def is_positive_int(value) -> bool:
    return is_int(value) and value > 0


def is_positive_real(value) -> bool:
    return is_real(value) and value > 0


def is_non_negative_int(value) -> bool:
    return is_int(value) and value >= 0


def _positive_ints(value) -> bool:
    return isinstance(value, list) and bool(value) and all(map(is_positive_int, value))


POSITIVE_INTS = [
    "latent_dim", "batch_size",
    "encoder.hidden", "encoder.num_layers", "decoder.hidden", "decoder.num_layers", "decoder.map_channels",
    "decoder.kernel", "model.bottom_dim", "model.hidden", "model.encoder_layers", "model.prior_layers",
    "prior.num_components", "prior.grid_side", "prior.hidden", "prior.num_layers",
    "prior.bins", "prior.truncation", "prior.num_samples", "prior.eval_samples", "schedule.prior_steps",
    "early_stopping.patience",
    "eval.num_samples", "eval.chunk_size", "eval.num_latent_samples", "figures.every_n_epochs", "log.every_n_epochs",
    "log.refresh_rate", "eval.quality.k",
]  # fmt: skip
POSITIVE_REALS = [
    "optimizer.lr",
    "prior.init_scale",
    "prior.grid_range",
    "eval.exact_width",
    "schedule.prior_lr_factor",
]
NON_NEGATIVE_INTS = ["kl_warmup_epochs"]
CHOICES = {
    "prior.init": PSEUDO_INPUT_INITS,
    "decoder.likelihood": LIKELIHOODS,
    "model.name": ("vae", "hvae"),
    "schedule.name": ("joint", "separate_lr", "alternating"),
    "model.activation": ACTIVATIONS,
    "encoder.activation": ACTIVATIONS,
    "decoder.activation": ACTIVATIONS,
    "log.progress_bar": ("auto", True, False),
    "eval.quality.decode": ("mean", "sample"),
}

# The metric that early stopping and the best checkpoint follow (mode "min"): the module logs
# val/loss, val/rec and val/kl, but only the loss is a fair criterion for choosing a model.
MONITORS = ("val/loss",)
# Lightning's accelerators and precisions that make sense for vaelab's models.
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")
PRECISIONS = (
    "32-true",
    "32",
    32,
    "64-true",
    "64",
    64,
    "bf16-mixed",
    "bf16-true",
    "bf16",
    "16-mixed",
    "16-true",
    "16",
    16,
)


def _duration(value) -> bool:
    """Lightning's max_time as a string: "DD:HH:MM:SS" with hours < 24, minutes and seconds < 60."""
    match = re.fullmatch(r"(\d+):(\d\d):(\d\d):(\d\d)", value) if isinstance(value, str) else None
    return bool(match) and int(match[2]) < 24 and int(match[3]) < 60 and int(match[4]) < 60


def _devices(value) -> bool:
    """Lightning's devices: a count, -1 (all), "auto", or a list of distinct device indices."""
    if isinstance(value, list):
        return bool(value) and all(is_non_negative_int(v) for v in value) and len(set(value)) == len(value)
    return is_positive_int(value) or value == -1 or value == "auto"


def _batch_limit(value) -> bool:
    """Lightning's limit_*_batches: a number of batches or a fraction of them."""
    return is_non_negative_int(value) or (is_real(value) and 0.0 <= value <= 1.0)


def _strategies() -> list[str]:
    from pytorch_lightning.strategies import StrategyRegistry  # Lightning: only for a config that sets a strategy

    return StrategyRegistry.available_strategies()


def _optional(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or test(value)


# Keys with any other check: key → (test, what is allowed).
CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (lambda v: is_int(v) and 0 <= v <= 2**32 - 1, "must be an integer from 0 to 4294967295 (numpy's seed range)"),
    "early_stopping.monitor": (lambda v: v in MONITORS, f"choose one of {', '.join(MONITORS)}"),
    "figures.enabled": (lambda v: isinstance(v, bool), "must be true or false"),
    "encoder.logvar_min": (_optional(is_real), "must be null or a finite number"),
    "encoder.logvar_max": (_optional(is_real), "must be null or a finite number"),
    "encoder.input_scale": (is_positive_real, "must be a positive number"),
    "encoder.channels": (_positive_ints, "must be a list of positive integers, e.g. [32, 64]"),
    "encoder.kernels": (_positive_ints, "must be a list of positive integers, e.g. [5, 3]"),
    "encoder.strides": (_positive_ints, "must be a list of positive integers, e.g. [1, 2]"),
    "decoder.channels": (_positive_ints, "must be a list of positive integers, e.g. [64, 64]"),
    "prior.init_mean": (is_real, "must be a finite number (a fraction of the data range)"),
    "prior.init_std": (is_positive_real, "must be a positive number (a fraction of the data range)"),
    "prior.input_min": (is_real, "must be a finite number"),
    "prior.input_max": (is_real, "must be a finite number"),
    "prior.learnable_weights": (lambda v: isinstance(v, bool), "must be true or false"),
    "prior.learnable_inputs": (lambda v: isinstance(v, bool), "must be true or false"),
    "prior.ema_decay": (lambda v: is_real(v) and 0 <= v < 1, "must be a number in [0, 1)"),
    "eval.exact": (lambda v: v in ("auto", True, False), "choose one of auto, true, false"),
    "eval.exact_grid": (lambda v: is_positive_int(v) and v % 2 == 0, "must be an even positive integer"),
    "eval.exact_prior_grid": (lambda v: is_positive_int(v) and v % 2 == 0, "must be an even positive integer"),
    "eval.quality": (lambda v: isinstance(v, dict), "must be a mapping, e.g. eval.quality.enabled=false"),
    "eval.quality.enabled": (lambda v: isinstance(v, bool), "must be true or false"),
    "eval.test": (lambda v: isinstance(v, bool), "must be true or false"),
    "eval.quality.num_samples": (_optional(is_positive_int), "must be null (as many as the reference images) or a positive integer"),
    "eval.quality.cache_dir": (lambda v: isinstance(v, str) and bool(v), "must be a folder"),
    "checkpoint.last_every_seconds": (lambda v: is_real(v) and v >= 0, "must be a number of seconds >= 0 (0: every epoch)"),
    "resume": (_optional(lambda v: isinstance(v, str) and bool(v)), "must be null or a run directory or checkpoint"),
    "dataset.input_dim": (is_positive_int, "must be a positive integer"),
    "dataset.image_shape": (lambda v: isinstance(v, list) and bool(v) and all(map(is_positive_int, v)),
                            "must be a list of positive integers, e.g. [8, 8]"),
    "dataset.input_min": (is_real, "must be a finite number"),
    "dataset.input_max": (is_real, "must be a finite number"),
    "dataset.likelihood": (lambda v: v in LIKELIHOODS, f"choose one of {', '.join(LIKELIHOODS)}"),
    "dataset.root": (lambda v: isinstance(v, str) and bool(v), "must be a folder"),
    "dataset.path": (lambda v: isinstance(v, str) and bool(v), "must be a file"),
    "dataset.type": (lambda v: v in DATA_TYPES, f"choose one of {', '.join(DATA_TYPES)}"),
    "dataset.val_fraction": (lambda v: is_real(v) and 0 < v < 1, "must be a fraction between 0 and 1"),
    "dataset.test_fraction": (lambda v: is_real(v) and 0 < v < 1, "must be a fraction between 0 and 1"),
    "dataset.binarize": (lambda v: isinstance(v, bool), "must be true or false"),
    "dataset.split_seed": (lambda v: is_int(v) and 0 <= v < 2**32, "must be an integer from 0 to 4294967295"),
    "dataset.datamodule.batch_size": (is_positive_int, "must be a positive integer"),
    "dataset.datamodule.eval_batch_size": (is_positive_int, "must be a positive integer"),
    "dataset.datamodule.limit": (_optional(is_positive_int), "must be null or a positive integer"),
    "dataset.datamodule.check_sizes": (lambda v: isinstance(v, bool), "must be true or false"),
    # Lightning's Trainer arguments (the ones a vaelab config is likely to set).
    "trainer.accelerator": (lambda v: v in ACCELERATORS, f"choose one of {', '.join(ACCELERATORS)}"),
    "trainer.devices": (_devices, 'must be a positive integer, -1 (all), "auto" or a list of device indices'),
    "trainer.num_nodes": (is_positive_int, "must be a positive integer"),
    "trainer.precision": (lambda v: v in PRECISIONS, f"choose one of {', '.join(map(str, PRECISIONS))}"),
    "trainer.max_epochs": (lambda v: is_positive_int(v) or v == -1, "must be a positive integer, or -1 for no limit"),
    "trainer.min_epochs": (_optional(is_non_negative_int), "must be null or an integer >= 0"),
    "trainer.max_steps": (lambda v: is_positive_int(v) or v == -1, "must be a positive integer, or -1 for no limit"),
    "trainer.min_steps": (_optional(is_non_negative_int), "must be null or an integer >= 0"),
    "trainer.max_time": (_optional(_duration),
                         'must be null or "DD:HH:MM:SS", e.g. 00:01:30:00 for an hour and a half'),
    "trainer.log_every_n_steps": (is_positive_int, "must be a positive integer"),
    "trainer.check_val_every_n_epoch": (is_positive_int, "must be a positive integer"),
    "trainer.val_check_interval": (_optional(lambda v: is_positive_int(v) or (is_real(v) and 0 < v <= 1)),
                                   "must be null, a number of batches or a fraction of an epoch in (0, 1]"),
    "trainer.num_sanity_val_steps": (_optional(lambda v: is_non_negative_int(v) or v == -1),
                                     "must be null, an integer >= 0, or -1 for all"),
    "trainer.accumulate_grad_batches": (is_positive_int, "must be a positive integer"),
    "trainer.gradient_clip_val": (_optional(lambda v: is_real(v) and v >= 0), "must be null or a number >= 0"),
    "trainer.gradient_clip_algorithm": (lambda v: v in (None, "norm", "value"), "choose one of norm, value, null"),
    "trainer.deterministic": (lambda v: v in (None, True, False, "warn"), "must be true, false, warn or null"),
    "trainer.benchmark": (_optional(lambda v: isinstance(v, bool)), "must be true, false or null"),
    "trainer.fast_dev_run": (lambda v: isinstance(v, bool) or is_non_negative_int(v), "must be true, false or a number of batches"),
    "trainer.overfit_batches": (_batch_limit, "must be a number of batches (an integer >= 0) or a fraction in [0, 1]"),
    "trainer.reload_dataloaders_every_n_epochs": (is_non_negative_int, "must be an integer >= 0"),
    "trainer.enable_checkpointing": (lambda v: v in (None, True), "must be true: vaelab saves the best and the last checkpoint"),
    "trainer.barebones": (lambda v: v is False, "must be false: vaelab logs to TensorBoard and saves checkpoints"),
    "trainer.profiler": (lambda v: v in (None, "simple", "advanced", "pytorch"), "choose one of simple, advanced, pytorch, null"),
    "trainer.strategy": (lambda v: v == "auto" or v in _strategies(), "choose auto or one of Lightning's strategies "
                         "(ddp, ddp_spawn, ddp_find_unused_parameters_true, fsdp, deepspeed, ...)"),
}  # fmt: skip
for _split in ("train", "val", "test", "predict"):
    CHECKS[f"trainer.limit_{_split}_batches"] = (
        _optional(_batch_limit),
        "must be null, a number of batches (an integer >= 0) or a fraction in [0, 1]",
    )
for _key in (
    "enable_progress_bar",
    "enable_model_summary",
    "inference_mode",
    "use_distributed_sampler",
    "detect_anomaly",
    "sync_batchnorm",
):
    CHECKS[f"trainer.{_key}"] = (lambda v: isinstance(v, bool), "must be true or false")

# Pairs that must be ordered: (smaller, larger, strictly). A missing or null end is not checked.
ORDERED = [
    ("encoder.logvar_min", "encoder.logvar_max", True),
    ("prior.input_min", "prior.input_max", True),
    ("dataset.input_min", "dataset.input_max", True),
    ("trainer.min_epochs", "trainer.max_epochs", False),
    ("trainer.min_steps", "trainer.max_steps", False),
]
# Keys that must equal another one (they refer to it by default; an override may break that).
SAME_AS = {
    "encoder.latent_dim": "latent_dim", "decoder.latent_dim": "latent_dim", "prior.latent_dim": "latent_dim",
    "encoder.input_dim": "dataset.input_dim", "decoder.output_dim": "dataset.input_dim",
    "prior.input_dim": "dataset.input_dim",
    "encoder.image_shape": "dataset.image_shape", "decoder.image_shape": "dataset.image_shape",
}  # fmt: skip
# Plain sections (no `_target_`): the keys they may hold.
SECTIONS = {
    "model": (
        "name",
        "bottom_dim",
        "hidden",
        "encoder_layers",
        "prior_layers",
        "activation",
        "logvar_min",
        "logvar_max",
    ),
    "early_stopping": ("monitor", "patience"),
    "eval": (
        "num_samples",
        "chunk_size",
        "num_latent_samples",
        "exact",
        "exact_grid",
        "exact_prior_grid",
        "exact_width",
        "quality",
        "test",
    ),
    "eval.quality": ("enabled", "k", "num_samples", "decode", "cache_dir"),
    "figures": ("enabled", "every_n_epochs"),
    "checkpoint": ("last_every_seconds",),
    "log": ("progress_bar", "refresh_rate", "every_n_epochs"),
}
# Trainer arguments vaelab passes itself.
TRAINER_RESERVED = ("callbacks", "logger", "plugins")
