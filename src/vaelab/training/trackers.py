"""Experiment trackers: the `logger` config group's Lightning loggers, and what every one receives.

`conf/logger/<name>.yaml` holds one or more named loggers (`tensorboard`, `csv`, `mlflow`,
`wandb`; `logger=[tensorboard,csv]` combines them), built by `build_loggers`. Lightning sends them
the training scalars; this module sends the rest the same way to each, so nothing downstream
(evaluation, figures, the sweep report) assumes TensorBoard:

    log_scalars      any scalars at a step (the evaluation's `test/*`)
    log_hparams      the hyperparameters that tell runs apart (`run_hparams`), with the `hp/` metrics
    log_image        a picture, where the tracker keeps pictures (not the CSV logger: the PNG
                     files in the run directory are its pictures)
    log_evaluation   a run's test results: the scalars, the hyperparameters with the `hp/` columns,
                     the quality figure
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from vaelab.rundir import RunDir

__all__ = [
    "HP_METRICS",
    "build_loggers",
    "finalize",
    "log_evaluation",
    "log_hparams",
    "log_image",
    "log_scalars",
    "option_name",
    "run_hparams",
]

# TensorBoard HPARAMS metrics: the columns that compare priors.
HP_METRICS = {
    "hp/test_nll": "test/nll",
    "hp/test_elbo": "test/elbo",
    "hp/mutual_info": "test/mutual_info",
    "hp/marginal_kl": "test/marginal_kl",
    "hp/total_correlation": "test/total_correlation",
    "hp/test_nll_exact": "test/nll_exact",  # latent_dim <= 2 only
    "hp/fid": "test/fid",  # sample quality (vaelab.evaluation.quality), when the data have labels
    "hp/precision": "test/precision",
    "hp/recall": "test/recall",
}

# Prior keys that are not the prior's own: they come from the dataset or the top level.
PRIOR_PLUMBING = {"_target_", "latent_dim", "input_dim", "input_min", "input_max"}
# Overridden keys that never tell runs apart.
OVERRIDE_PLUMBING = re.compile(
    r"^(run_dir|resume|checkpoint\.|hydra\b|dataset\.root|dataset\.datamodule\b|trainer\.(enable_|log_every))"
)


def build_loggers(cfg: DictConfig, purge_step: int | None = None) -> list:
    """The Lightning loggers of `cfg.logger` (a mapping name → logger config), in that order.
    `purge_step` (a resumed run): TensorBoard hides what an earlier process logged from that step on."""
    node = cfg.get("logger")
    if not node:
        return []
    if any(str(conf.get("tracking_uri", "")).startswith("file:") for conf in node.values() if conf is not None):
        # MLflow 3 refuses its file store unless told: the file store is what a local run wants (no server).
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    purge = lambda conf: (
        {"purge_step": purge_step}
        if purge_step is not None and str(conf.get("_target_", "")).endswith("TensorBoardLogger")
        else {}
    )
    return [instantiate(conf, **purge(conf)) for conf in node.values() if conf is not None]


def option_name(class_path: str, suffix: str) -> str:
    """The config option for a class: "vaelab.priors.GTMVampPrior" → "gtm_vamp"."""
    name = class_path.rsplit(".", 1)[-1].removesuffix(suffix)
    return re.sub(r"(?<=[a-z])(?=[A-Z][a-z])|(?<=[a-z])(?=[A-Z]{2})|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _choices() -> tuple[dict[str, Any], list[str]]:
    """Hydra's group choices and the task overrides, when Hydra runs this process."""
    if HydraConfig.initialized():
        hydra = HydraConfig.get()
        return dict(hydra.runtime.choices), list(hydra.overrides.task)
    return {}, []


def run_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The hyperparameters that compare runs: the prior's option name (`vamp`), the dataset,
    `latent_dim`, `seed`, the prior's own keys (`prior.num_components`, ...) and every key set on
    the command line (what a sweep varies); not the constant plumbing (`_target_`s, the run
    directory, the data module's internals)."""
    choices, overrides = _choices()
    params: dict[str, Any] = {
        "prior": choices.get("prior") or option_name(cfg.prior._target_, "Prior"),
        "dataset": choices.get("dataset") or option_name(cfg.dataset.datamodule._target_, "DataModule"),
        "latent_dim": cfg.latent_dim,
        "seed": cfg.seed,
    }
    prior = OmegaConf.to_container(cfg.prior, resolve=True)
    params.update({f"prior.{key}": value for key, value in prior.items() if key not in PRIOR_PLUMBING})
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key in params or OVERRIDE_PLUMBING.match(key):
            continue
        value = OmegaConf.select(cfg, key, default=None) if "/" not in key else None
        params[key] = choices.get(key) if key in choices else value
    return {key: _plain(value) for key, value in params.items()}


def _plain(value: Any) -> Any:
    """A value every tracker can show: numbers, strings and booleans as they are, the rest as text."""
    return value if isinstance(value, (int, float, str, bool)) else str(value)


def _kind(logger) -> str:
    return type(logger).__name__


def log_scalars(loggers: Iterable, metrics: dict[str, float], step: int) -> None:
    for logger in loggers:
        logger.log_metrics(metrics, step=step)


def log_hparams(
    loggers: Iterable, params: dict[str, Any], metrics: dict[str, float] | None = None, step: int | None = None
) -> None:
    """`params` to every logger; with `metrics` (the `hp/` columns) TensorBoard's HPARAMS table
    links them, the others get them as scalars."""
    for logger in loggers:
        if _kind(logger) == "TensorBoardLogger":
            logger.log_hyperparams(params, metrics=metrics, step=step)
        else:
            logger.log_hyperparams(params)
            if metrics:
                logger.log_metrics(metrics, step=step)


def log_image(loggers: Iterable, tag: str, image: np.ndarray, step: int) -> None:
    """A (H, W) float image in [0, 1] or a (H, W, 3) uint8 image, to each tracker that keeps images."""
    for logger in loggers:
        kind = _kind(logger)
        if kind == "TensorBoardLogger":
            logger.experiment.add_image(tag, image, step, dataformats="HWC" if image.ndim == 3 else "HW")
        elif kind == "WandbLogger":
            logger.log_image(key=tag, images=[image], step=step)
        elif kind == "MLFlowLogger":
            logger.experiment.log_image(logger.run_id, _uint8(image), f"{tag}/step_{step:06d}.png")


def _uint8(image: np.ndarray) -> np.ndarray:
    return image if image.dtype == np.uint8 else np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


def finalize(loggers: Iterable, status: str = "success") -> None:
    """Close every tracker's run: the next run in this process (a sweep job) starts its own."""
    for logger in loggers:
        logger.finalize(status)
        if _kind(logger) == "WandbLogger":  # Lightning leaves the W&B run open
            logger.experiment.finish()


def log_evaluation(
    loggers, cfg: DictConfig, metrics: dict[str, Any], step: int, run_dir: str | Path | None = None
) -> None:
    """Test scalars at `step` to every experiment tracker (Lightning loggers), and the run's
    hyperparameters (`run_hparams`) with the `hp/` metrics, so runs with different
    priors compare in one table (TensorBoard's HPARAMS tab, MLflow's and W&B's run tables). The
    quality figure of `run_dir` goes to the trackers that keep images, when the evaluation drew it."""
    loggers = list(loggers) if isinstance(loggers, (list, tuple)) else [loggers]
    scalars = {key: value for key, value in metrics.items() if key.startswith("test/") and key != "test/loss"}
    log_scalars(loggers, scalars, step)
    figure = RunDir(run_dir).quality_figure if run_dir is not None else None
    if figure is not None and "test/quality_density_spearman" in metrics and figure.is_file():
        log_image(loggers, "quality/vs_density", np.asarray(Image.open(figure).convert("RGB")), step)
    hp_metrics = {hp: metrics[key] for hp, key in HP_METRICS.items() if key in metrics}
    log_hparams(loggers, run_hparams(cfg), metrics=hp_metrics, step=step)
    finalize(loggers)
