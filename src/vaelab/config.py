"""Validation of a composed config, once, before any data is read or anything is built.

Every error is one line that names the key, the value found and what is allowed:
`<key>=<value> is not allowed: <what is allowed>`. `check_config` goes through the tables below
(one check per key; keys a config does not have are skipped), then the rules that involve several
keys, then the machine (GPUs) and the files the run will read.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Callable

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from vaelab.errors import ConfigError  # noqa: F401 - defined there, imported from here too
from vaelab.nets import ACTIVATIONS, LIKELIHOODS
from vaelab.priors import PSEUDO_INPUT_INITS


def _int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _positive_int(value) -> bool:
    return _int(value) and value > 0


def _positive_real(value) -> bool:
    return _real(value) and value > 0


def _non_negative_int(value) -> bool:
    return _int(value) and value >= 0


POSITIVE_INTS = [
    "latent_dim", "batch_size",
    "encoder.hidden", "encoder.num_layers", "decoder.hidden", "decoder.num_layers",
    "prior.num_components", "prior.grid_side", "prior.hidden", "prior.num_layers",
    "prior.bins", "prior.truncation", "prior.num_samples", "prior.eval_samples",
    "early_stopping.patience",
    "eval.num_samples", "eval.chunk_size", "eval.num_latent_samples", "figures.every_n_epochs", "log.every_n_epochs",
    "log.refresh_rate", "eval.quality.k",
]  # fmt: skip
POSITIVE_REALS = ["optimizer.lr", "prior.init_scale", "prior.grid_range", "eval.exact_width"]
NON_NEGATIVE_INTS = ["kl_warmup_epochs"]
CHOICES = {
    "prior.init": PSEUDO_INPUT_INITS,
    "decoder.likelihood": LIKELIHOODS,
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
PRECISIONS = ("32-true", "32", 32, "64-true", "64", 64, "bf16-mixed", "bf16-true", "bf16", "16-mixed", "16-true", "16", 16)


def _duration(value) -> bool:
    """Lightning's max_time as a string: "DD:HH:MM:SS" with hours < 24, minutes and seconds < 60."""
    match = re.fullmatch(r"(\d+):(\d\d):(\d\d):(\d\d)", value) if isinstance(value, str) else None
    return bool(match) and int(match[2]) < 24 and int(match[3]) < 60 and int(match[4]) < 60


def _devices(value) -> bool:
    """Lightning's devices: a count, -1 (all), "auto", or a list of distinct device indices."""
    if isinstance(value, list):
        return bool(value) and all(_non_negative_int(v) for v in value) and len(set(value)) == len(value)
    return _positive_int(value) or value == -1 or value == "auto"


def _batch_limit(value) -> bool:
    """Lightning's limit_*_batches: a number of batches or a fraction of them."""
    return _non_negative_int(value) or (_real(value) and 0.0 <= value <= 1.0)


def _strategies() -> list[str]:
    from pytorch_lightning.strategies import StrategyRegistry

    return StrategyRegistry.available_strategies()


def _optional(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or test(value)


# Keys with any other check: key → (test, what is allowed).
CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (lambda v: _int(v) and 0 <= v <= 2**32 - 1, "must be an integer from 0 to 4294967295 (numpy's seed range)"),
    "early_stopping.monitor": (lambda v: v in MONITORS, f"choose one of {', '.join(MONITORS)}"),
    "figures.enabled": (lambda v: isinstance(v, bool), "must be true or false"),
    "encoder.logvar_min": (_optional(_real), "must be null or a finite number"),
    "encoder.logvar_max": (_optional(_real), "must be null or a finite number"),
    "encoder.input_scale": (_positive_real, "must be a positive number"),
    "prior.init_mean": (_real, "must be a finite number (a fraction of the data range)"),
    "prior.init_std": (_positive_real, "must be a positive number (a fraction of the data range)"),
    "prior.input_min": (_real, "must be a finite number"),
    "prior.input_max": (_real, "must be a finite number"),
    "prior.learnable_weights": (lambda v: isinstance(v, bool), "must be true or false"),
    "prior.learnable_inputs": (lambda v: isinstance(v, bool), "must be true or false"),
    "prior.ema_decay": (lambda v: _real(v) and 0 <= v < 1, "must be a number in [0, 1)"),
    "eval.exact": (lambda v: v in ("auto", True, False), "choose one of auto, true, false"),
    "eval.exact_grid": (lambda v: _positive_int(v) and v % 2 == 0, "must be an even positive integer"),
    "eval.exact_prior_grid": (lambda v: _positive_int(v) and v % 2 == 0, "must be an even positive integer"),
    "eval.quality": (lambda v: isinstance(v, dict), "must be a mapping, e.g. eval.quality.enabled=false"),
    "eval.quality.enabled": (lambda v: isinstance(v, bool), "must be true or false"),
    "eval.quality.num_samples": (_optional(_positive_int), "must be null (as many as the reference images) or a positive integer"),
    "eval.quality.cache_dir": (lambda v: isinstance(v, str) and bool(v), "must be a folder"),
    "checkpoint.last_every_seconds": (lambda v: _real(v) and v >= 0, "must be a number of seconds >= 0 (0: every epoch)"),
    "resume": (_optional(lambda v: isinstance(v, str) and bool(v)), "must be null or a run directory or checkpoint"),
    "dataset.input_dim": (_positive_int, "must be a positive integer"),
    "dataset.image_shape": (lambda v: isinstance(v, list) and bool(v) and all(map(_positive_int, v)),
                            "must be a list of positive integers, e.g. [8, 8]"),
    "dataset.input_min": (_real, "must be a finite number"),
    "dataset.input_max": (_real, "must be a finite number"),
    "dataset.likelihood": (lambda v: v in LIKELIHOODS, f"choose one of {', '.join(LIKELIHOODS)}"),
    "dataset.root": (lambda v: isinstance(v, str) and bool(v), "must be a folder"),
    "dataset.datamodule.batch_size": (_positive_int, "must be a positive integer"),
    "dataset.datamodule.eval_batch_size": (_positive_int, "must be a positive integer"),
    "dataset.datamodule.limit": (_optional(_positive_int), "must be null or a positive integer"),
    "dataset.datamodule.check_sizes": (lambda v: isinstance(v, bool), "must be true or false"),
    # Lightning's Trainer arguments (the ones a vaelab config is likely to set).
    "trainer.accelerator": (lambda v: v in ACCELERATORS, f"choose one of {', '.join(ACCELERATORS)}"),
    "trainer.devices": (_devices, 'must be a positive integer, -1 (all), "auto" or a list of device indices'),
    "trainer.num_nodes": (_positive_int, "must be a positive integer"),
    "trainer.precision": (lambda v: v in PRECISIONS, f"choose one of {', '.join(map(str, PRECISIONS))}"),
    "trainer.max_epochs": (lambda v: _positive_int(v) or v == -1, "must be a positive integer, or -1 for no limit"),
    "trainer.min_epochs": (_optional(_non_negative_int), "must be null or an integer >= 0"),
    "trainer.max_steps": (lambda v: _positive_int(v) or v == -1, "must be a positive integer, or -1 for no limit"),
    "trainer.min_steps": (_optional(_non_negative_int), "must be null or an integer >= 0"),
    "trainer.max_time": (_optional(_duration),
                         'must be null or "DD:HH:MM:SS", e.g. 00:01:30:00 for an hour and a half'),
    "trainer.log_every_n_steps": (_positive_int, "must be a positive integer"),
    "trainer.check_val_every_n_epoch": (_positive_int, "must be a positive integer"),
    "trainer.val_check_interval": (_optional(lambda v: _positive_int(v) or (_real(v) and 0 < v <= 1)),
                                   "must be null, a number of batches or a fraction of an epoch in (0, 1]"),
    "trainer.num_sanity_val_steps": (_optional(lambda v: _non_negative_int(v) or v == -1),
                                     "must be null, an integer >= 0, or -1 for all"),
    "trainer.accumulate_grad_batches": (_positive_int, "must be a positive integer"),
    "trainer.gradient_clip_val": (_optional(lambda v: _real(v) and v >= 0), "must be null or a number >= 0"),
    "trainer.gradient_clip_algorithm": (lambda v: v in (None, "norm", "value"), "choose one of norm, value, null"),
    "trainer.deterministic": (lambda v: v in (None, True, False, "warn"), "must be true, false, warn or null"),
    "trainer.benchmark": (_optional(lambda v: isinstance(v, bool)), "must be true, false or null"),
    "trainer.fast_dev_run": (lambda v: isinstance(v, bool) or _non_negative_int(v), "must be true, false or a number of batches"),
    "trainer.overfit_batches": (_batch_limit, "must be a number of batches (an integer >= 0) or a fraction in [0, 1]"),
    "trainer.reload_dataloaders_every_n_epochs": (_non_negative_int, "must be an integer >= 0"),
    "trainer.enable_checkpointing": (lambda v: v in (None, True), "must be true: vaelab saves the best and the last checkpoint"),
    "trainer.barebones": (lambda v: v is False, "must be false: vaelab logs to TensorBoard and saves checkpoints"),
    "trainer.profiler": (lambda v: v in (None, "simple", "advanced", "pytorch"), "choose one of simple, advanced, pytorch, null"),
    "trainer.strategy": (lambda v: v == "auto" or v in _strategies(), "choose auto or one of Lightning's strategies "
                         "(ddp, ddp_spawn, ddp_find_unused_parameters_true, fsdp, deepspeed, ...)"),
}  # fmt: skip
for _split in ("train", "val", "test", "predict"):
    CHECKS[f"trainer.limit_{_split}_batches"] = (
        _optional(_batch_limit), "must be null, a number of batches (an integer >= 0) or a fraction in [0, 1]"
    )
for _key in ("enable_progress_bar", "enable_model_summary", "inference_mode", "use_distributed_sampler",
             "detect_anomaly", "sync_batchnorm"):  # fmt: skip
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
}  # fmt: skip
# Plain sections (no `_target_`): the keys they may hold.
SECTIONS = {
    "early_stopping": ("monitor", "patience"),
    "eval": ("num_samples", "chunk_size", "num_latent_samples", "exact", "exact_grid", "exact_prior_grid",
             "exact_width", "quality"),
    "eval.quality": ("enabled", "k", "num_samples", "decode", "cache_dir"),
    "figures": ("enabled", "every_n_epochs"),
    "checkpoint": ("last_every_seconds",),
    "log": ("progress_bar", "refresh_rate", "every_n_epochs"),
}
# Trainer arguments vaelab passes itself.
TRAINER_RESERVED = ("callbacks", "logger", "plugins")


def _error(key: str, value: Any, allowed: str) -> ConfigError:
    shown = "null" if value is None else str(value).lower() if isinstance(value, bool) else repr(value)  # as typed
    return ConfigError(f"{key}={shown} is not allowed: {allowed}")


def check_config(cfg: DictConfig, machine: bool = True, files: bool = True) -> None:
    """Raise ConfigError for the first bad value. `machine=False` skips the checks of this
    machine (GPUs: to evaluate a run trained elsewhere), `files=False` those of the data files."""

    def value(key: str):
        try:
            found = OmegaConf.select(cfg, key, default=None)
        except Exception as error:  # noqa: BLE001 - an interpolation that does not resolve, a missing value
            parent, _, last = key.rpartition(".")
            node = OmegaConf.select(cfg, parent, throw_on_resolution_failure=False) if parent else cfg
            raw = node._get_node(last)._value() if isinstance(node, DictConfig) and last in node else None
            raise _error(key, raw, f"cannot be resolved ({str(error).splitlines()[0]})") from None
        return OmegaConf.to_container(found, resolve=True) if isinstance(found, (DictConfig, ListConfig)) else found

    def present(key: str) -> bool:  # the key exists (its value may be null, or fail to resolve)
        parent, _, last = key.rpartition(".")
        node = OmegaConf.select(cfg, parent, throw_on_resolution_failure=False) if parent else cfg
        return isinstance(node, DictConfig) and last in node.keys()

    for keys, ok, allowed in (
        (POSITIVE_INTS, _positive_int, "a positive integer"),
        (POSITIVE_REALS, _positive_real, "a positive number"),
        (NON_NEGATIVE_INTS, _non_negative_int, "an integer >= 0"),
    ):
        for key in keys:
            if present(key) and not ok(value(key)):
                raise _error(key, value(key), f"must be {allowed}")
    for key, allowed in CHOICES.items():
        if present(key) and value(key) not in allowed:
            raise _error(key, value(key), f"choose one of {', '.join(map(str, allowed))}")
    for key, (ok, allowed) in CHECKS.items():
        if present(key) and not ok(value(key)):
            raise _error(key, value(key), allowed)

    _check_known_keys(cfg, value)
    _check_rules(value)
    _check_data_init(value)
    _check_optimizer(value)
    if machine:
        _check_devices(value)
    if files:
        _check_data_files(value)


def _locate(key: str, target: Any) -> Any:
    """The class or function a `_target_` names (quietly: Hydra's own lookup logs its failures)."""
    parts = str(target).split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for part in parts[split:]:
                found = getattr(found, part)
        except AttributeError:
            break
        if callable(found):
            return found
        break
    raise _error(key, target, "must name an importable class, e.g. torch.optim.Adam")


def _check_known_keys(cfg: DictConfig, value: Callable[[str], Any]) -> None:
    """Every key of a `_target_` node is an argument of what it names; plain sections hold only
    their own keys (`+prior.num_compnents=3` would otherwise fail deep inside instantiate)."""
    for section, keys in SECTIONS.items():
        node = OmegaConf.select(cfg, section, default=None, throw_on_resolution_failure=False)
        for key in node.keys() if isinstance(node, DictConfig) else ():
            if key not in keys:
                raise _error(f"{section}.{key}", value(f"{section}.{key}"), f"{section} has the keys {', '.join(keys)}")

    def targets(node: DictConfig, prefix: str):
        for key in node.keys():
            child = node._get_node(key)
            if isinstance(child, DictConfig) and key != "hydra":
                if "_target_" in child:
                    yield f"{prefix}{key}", child
                yield from targets(child, f"{prefix}{key}.")

    for path, node in targets(cfg, ""):
        target = _locate(f"{path}._target_", value(f"{path}._target_"))
        if path == "optimizer" and not (inspect.isclass(target) and issubclass(target, torch.optim.Optimizer)):
            raise _error(f"{path}._target_", value(f"{path}._target_"), "must name a torch.optim.Optimizer, e.g. torch.optim.Adam")
        parameters = inspect.signature(target).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            continue
        names = [name for name in parameters if name not in ("self", "params", "args", "kwargs")]
        for key in node.keys():
            if str(key).startswith("_"):
                continue
            if path == "trainer" and key in TRAINER_RESERVED:
                raise _error(f"trainer.{key}", value(f"trainer.{key}"), "vaelab sets it itself; remove the key")
            if key not in names:
                name = value(f"{path}._target_")
                takes = "it takes " + ", ".join(names) if len(names) <= 12 else f"see help({name}) for its arguments"
                raise _error(f"{path}.{key}", value(f"{path}.{key}"), f"{name} has no argument {key} ({takes})")


def _check_rules(value: Callable[[str], Any]) -> None:
    """Rules that involve more than one key."""
    for low, high, strict in ORDERED:
        a, b = value(low), value(high)
        if a is None or b is None or (high.startswith("trainer.") and b == -1):
            continue
        if a > b or (strict and a == b):
            raise _error(low, a, f"must be {'<' if strict else '<='} {high} ({b})")
    for key, reference in SAME_AS.items():
        if value(key) is not None and value(key) != value(reference):
            raise _error(key, value(key), f"must equal {reference} ({value(reference)!r})")
    likelihood = value("decoder.likelihood")
    levels, data_min, data_max = value("decoder.num_levels"), value("dataset.input_min"), value("dataset.input_max")
    if likelihood == "categorical" and not (_int(levels) and levels >= 2):
        raise _error("decoder.num_levels", levels, "must be an integer >= 2")
    if likelihood == "categorical" and data_max is not None and (data_min < 0 or levels < data_max + 1):
        raise _error("decoder.num_levels", levels, f"must be >= {data_max + 1} for data with values "
                     f"{data_min}..{data_max} (a categorical decoder has one level per value 0..num_levels-1)")  # fmt: skip
    if likelihood == "bernoulli" and data_max is not None and (data_min, data_max) != (0, 1):
        raise _error("decoder.likelihood", likelihood, f"categorical for data with values {data_min}..{data_max} "
                     "(bernoulli needs data in 0..1)")  # fmt: skip
    shape, input_dim = value("dataset.image_shape"), value("dataset.input_dim")
    if shape is not None and input_dim is not None and math.prod(shape) != input_dim:
        raise _error("dataset.image_shape", shape, f"must hold dataset.input_dim ({input_dim}) pixels")
    if value("eval.exact") is True and value("latent_dim") > 2:
        raise _error("eval.exact", True, f"with latent_dim={value('latent_dim')}: the quadrature needs latent_dim <= 2 "
                     "(auto skips it)")  # fmt: skip
    if value("prior.learnable_inputs") is False and value("prior.init") != "data":
        raise ConfigError(f"prior.learnable_inputs=false is not allowed with prior.init={value('prior.init')}: "
                          "fixed pseudo-inputs must be training inputs, prior.init=data")  # fmt: skip
    if str(value("prior._target_") or "").endswith("FlowPrior") and value("latent_dim") < 2:
        raise _error("latent_dim", value("latent_dim"), "prior=flow needs latent_dim >= 2 (its coupling layers split z in two)")


def _check_devices(value: Callable[[str], Any]) -> None:
    """A GPU trainer needs GPUs: as many as `trainer.devices` asks for."""
    accelerator, devices, precision = value("trainer.accelerator"), value("trainer.devices"), value("trainer.precision")
    if accelerator in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise _error("trainer.accelerator", accelerator, "this machine has no CUDA GPU (torch.cuda.is_available() "
                         "is false); use trainer=cpu")  # fmt: skip
        count = torch.cuda.device_count()
        if (_int(devices) and devices > count) or (isinstance(devices, list) and max(devices) >= count):
            raise _error("trainer.devices", devices, f"this machine has {count} CUDA GPU(s): at most {count}, or -1 for all")
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise _error("trainer.accelerator", accelerator, "this machine has no Apple MPS device; use trainer=cpu")
    if accelerator == "cpu" and not (_positive_int(devices) or devices == "auto"):
        raise _error("trainer.devices", devices, 'on a CPU: a positive number of processes or "auto"')
    if accelerator == "cpu" and precision in ("16-mixed", "16", 16):
        raise _error("trainer.precision", precision, "on a CPU: 32-true, 64-true, bf16-mixed or bf16-true (16-mixed needs a GPU)")


def _check_data_files(value: Callable[[str], Any]) -> None:
    """The data folder and files exist (the datamodule class's `check_files`; nothing is read)."""
    datamodule = _locate("dataset.datamodule._target_", value("dataset.datamodule._target_"))
    if value("dataset.datamodule.root") is not None and hasattr(datamodule, "check_files"):
        datamodule.check_files(value("dataset.datamodule.root"))


def _check_data_init(value: Callable[[str], Any]) -> None:
    """A data-initialised prior copies K training examples: there must be K of them, as known
    before reading the data from the datamodule class's `SPLIT_SIZES` and `limit`."""
    if value("prior.init") != "data" or value("dataset.datamodule._target_") is None:
        return
    datamodule = _locate("dataset.datamodule._target_", value("dataset.datamodule._target_"))
    sizes = getattr(datamodule, "SPLIT_SIZES", None)
    known = [sizes["train"]] if sizes and value("dataset.datamodule.check_sizes") is not False else []
    bounds = known + ([value("dataset.datamodule.limit")] if value("dataset.datamodule.limit") else [])
    if bounds and value("prior.num_components") > min(bounds):
        raise _error("prior.num_components", value("prior.num_components"), f"at most {min(bounds)} with prior.init=data "
                     f"(the training split has {min(bounds)} examples to copy); or prior.init=random")  # fmt: skip


def _check_optimizer(value: Callable[[str], Any]) -> None:
    """Build the optimizer once on a dummy parameter: torch checks its own arguments (betas,
    eps, momentum, ...), here rather than after the data are loaded."""
    target = value("optimizer._target_")
    if target is None:
        return
    optimizer = _locate("optimizer._target_", target)  # a torch.optim.Optimizer (_check_known_keys)
    kwargs = {key: val for key, val in value("optimizer").items() if not key.startswith("_")}
    try:
        optimizer([torch.zeros(1, requires_grad=True)], **kwargs)
    except Exception as error:  # noqa: BLE001 - whatever the optimizer says about its arguments
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise _error("optimizer", kwargs, f"{target} rejects it: {reason}") from None
