"""Validation of a composed config, once, before any work is done.

Every error names the key, the value found and what is allowed.
"""

from __future__ import annotations

import re
from numbers import Integral, Real

from omegaconf import DictConfig, OmegaConf

from vaelab.errors import ConfigError  # noqa: F401 - defined there, imported from here too
from vaelab.nets import ACTIVATIONS, LIKELIHOODS
from vaelab.priors import PSEUDO_INPUT_INITS


def _positive_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool) and value > 0


def _positive_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and value > 0


def _non_negative_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 0


POSITIVE_INTS = [
    "latent_dim", "batch_size",
    "encoder.hidden", "encoder.num_layers", "decoder.hidden", "decoder.num_layers",
    "prior.num_components", "prior.grid_side", "prior.hidden", "prior.num_layers",
    "early_stopping.patience",
    "eval.num_samples", "eval.chunk_size", "eval.num_latent_samples", "figures.every_n_epochs", "log.every_n_epochs",
    "log.refresh_rate",
]  # fmt: skip
POSITIVE_REALS = ["optimizer.lr", "prior.init_scale", "prior.grid_range"]
NON_NEGATIVE_INTS = ["kl_warmup_epochs"]
CHOICES = {
    "prior.init": PSEUDO_INPUT_INITS,
    "decoder.likelihood": LIKELIHOODS,
    "encoder.activation": ACTIVATIONS,
    "decoder.activation": ACTIVATIONS,
    "log.progress_bar": ("auto", True, False),
}


def _duration(value) -> bool:
    """Lightning's max_time as a string: "DD:HH:MM:SS" with hours < 24, minutes and seconds < 60."""
    match = re.fullmatch(r"(\d+):(\d\d):(\d\d):(\d\d)", value) if isinstance(value, str) else None
    return bool(match) and int(match[2]) < 24 and int(match[3]) < 60 and int(match[4]) < 60


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first bad value; keys a config does not have are skipped."""

    def value(key: str):
        return OmegaConf.select(cfg, key, default=None)

    for keys, ok, allowed in (
        (POSITIVE_INTS, _positive_int, "a positive integer"),
        (POSITIVE_REALS, _positive_real, "a positive number"),
        (NON_NEGATIVE_INTS, _non_negative_int, "an integer >= 0"),
    ):
        for key in keys:
            if value(key) is not None and not ok(value(key)):
                raise ConfigError(f"{key}={value(key)!r} is not allowed: must be {allowed}")
    for key, allowed in CHOICES.items():
        if value(key) is not None and value(key) not in allowed:
            raise ConfigError(f"{key}={value(key)!r} is not allowed: choose one of {', '.join(map(str, allowed))}")
    if value("decoder.likelihood") == "categorical" and not (_positive_int(value("decoder.num_levels")) and value("decoder.num_levels") >= 2):
        raise ConfigError(f"decoder.num_levels={value('decoder.num_levels')!r} is not allowed: must be an integer >= 2")
    if value("trainer.max_time") is not None and not _duration(value("trainer.max_time")):
        raise ConfigError(f"trainer.max_time={value('trainer.max_time')!r} is not allowed: must be null or "
                          "\"DD:HH:MM:SS\", e.g. 00:01:30:00 for an hour and a half")  # fmt: skip
    target = value("prior._target_") or ""
    if target.endswith("FlowPrior") and value("latent_dim") < 2:
        raise ConfigError(f"latent_dim={value('latent_dim')} is not allowed with prior=flow: coupling layers need latent_dim >= 2")
