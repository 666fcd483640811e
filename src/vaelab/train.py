"""One training run: config → objects → fit → test on the best checkpoint → files.

`run(cfg)` is what `python train.py` calls; `build(cfg)` is the part notebooks want.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Callable

import pytorch_lightning as pl
import torch
import yaml
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.utilities import rank_zero_only

from vaelab import tracking
from vaelab.callbacks import LatentFigures
from vaelab.config import check_config
from vaelab.evaluate import evaluate_test_set, format_table, log_evaluation
from vaelab.files import atomic_write_json, atomic_write_text
from vaelab.interrupt import (BackgroundCheckpointIO, GracefulStop, LatestCheckpoint, RandomStreams, TrainingInterrupted,
                              requeue, write_interrupted)  # fmt: skip
from vaelab.logs import EpochLog, use_progress_bar
from vaelab.model import VAE, WarmupEarlyStopping
from vaelab.resume import INTERRUPTED_FILE, ResumeError, changed_keys

log = logging.getLogger(__name__)


def build(cfg: DictConfig, datamodule: pl.LightningDataModule | None = None, model_class: type[VAE] = VAE) -> VAE:
    """A fresh VAE from a composed config. With `prior.init=data` the pseudo-inputs are copied
    from the training split of `datamodule` (built from the config when not given). `model_class`:
    a subclass of VAE with the same arguments (`vaelab.posthoc.PosthocVAE` trains the prior only)."""
    check_config(cfg, machine=False, files=False)  # a model only: no trainer, no files read here
    node = lambda key: OmegaConf.to_container(cfg[key], resolve=True)  # noqa: E731
    model = model_class(
        encoder=node("encoder"),
        decoder=node("decoder"),
        prior=node("prior"),
        optimizer=node("optimizer"),
        kl_warmup_epochs=cfg.kl_warmup_epochs,
        image_shape=list(cfg.dataset.image_shape),
    )
    if cfg.prior.get("init") == "data":
        if datamodule is None:
            datamodule = instantiate(cfg.dataset.datamodule)
        datamodule.setup("fit")
        model.prior.init_from_data(datamodule.splits["train"][0])
    return model


def loggers(cfg: DictConfig, purge_step: int | None = None) -> list:
    """The experiment trackers of the `logger` group, told the run's hyperparameters at once
    (the `hp/` metrics follow at the end, from `log_evaluation`)."""
    trackers = tracking.build_loggers(cfg, purge_step)
    tracking.log_hparams(trackers, tracking.run_hparams(cfg))
    return trackers


def reporting_callbacks(cfg: DictConfig, run_dir: Path, progress_bar: bool) -> list[pl.Callback]:
    """What the run shows and draws while it trains: the epoch lines and the figures."""
    callbacks: list[pl.Callback] = [EpochLog(cfg.log.every_n_epochs, terminal=progress_bar, monitor=cfg.early_stopping.monitor)]
    if progress_bar:  # redrawn every few steps, not at each: the bar's redraws cost as much as a digits step
        callbacks.append(TQDMProgressBar(refresh_rate=cfg.log.get("refresh_rate", 1)))
    if cfg.figures.enabled:
        callbacks.append(LatentFigures(run_dir, every_n_epochs=cfg.figures.every_n_epochs))
    return callbacks


def summary(cfg: DictConfig, metrics: dict, run_dir: Path) -> str:
    """The last line of a run: what it trained, and the test NLL and ELBO of the evaluation."""
    best_val = "none (no validation ran)" if metrics["best_val_loss"] is None else f"{metrics['best_val_loss']:.3f}"
    prior = tracking.run_hparams(cfg)["prior"]
    return (
        f"vaelab: prior={prior} latent_dim={cfg.latent_dim} epochs={metrics['epochs']} best val/loss={best_val} "
        f"test NLL={metrics['test/nll']:.3f} (S={metrics['eval']['num_samples']}) ELBO={metrics['test/elbo']:.3f} "
        f"({metrics['train_seconds']:.1f}s training) → {run_dir}"
    )


def run(cfg: DictConfig, build_model: Callable[[DictConfig, pl.LightningDataModule], VAE] | None = None
        ) -> dict[str, float]:  # fmt: skip
    """Train, test the best checkpoint, and write the run directory. Returns the test metrics.
    `build_model(cfg, datamodule)` makes the model to train (default `build`: a fresh VAE; a
    post-hoc fit passes one whose encoder and decoder are a trained run's, frozen).

    With `cfg.resume` (a checkpoint; `python train.py resume=<run>` sets it), or when the run
    directory holds an `interrupted.json`, training continues from that checkpoint with every
    state restored. A signal during training raises `TrainingInterrupted` after `last.ckpt` and
    `interrupted.json` are written (`vaelab.interrupt`)."""
    check_config(cfg)
    run_dir = Path(cfg.run_dir)
    resume_from = resume_checkpoint(cfg, run_dir)  # checked before anything is written
    run_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:  # the other processes of a DDP run share this directory
        atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.dataset.datamodule)
    datamodule.setup("fit")  # read the data now: a missing or malformed file stops the run here
    model = (build_model or build)(cfg, datamodule)

    # The best epoch's weights, for the test (the full training state is in last.ckpt).
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best-{epoch:03d}",
        monitor=cfg.early_stopping.monitor,
        auto_insert_metric_name=False,
        save_weights_only=True,
        enable_version_counter=False,  # a resumed run rewrites the same files
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    latest = LatestCheckpoint(last, every_seconds=cfg.checkpoint.last_every_seconds)
    early_stopping = WarmupEarlyStopping(
        monitor=cfg.early_stopping.monitor, patience=cfg.early_stopping.patience, warmup_epochs=cfg.kl_warmup_epochs
    )
    progress_bar = use_progress_bar(cfg)
    callbacks = [checkpoint, latest, early_stopping, RandomStreams(), GracefulStop(last),
                 *reporting_callbacks(cfg, run_dir, progress_bar)]  # fmt: skip
    # Resuming: TensorBoard hides events after the checkpoint's step (logged before a hard kill).
    trackers = loggers(cfg, purge_step=resume_from[1] + 1 if resume_from else None)
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=trackers or False,
                                      enable_progress_bar=progress_bar, plugins=[BackgroundCheckpointIO()])  # fmt: skip

    start = time.perf_counter()
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from[0] if resume_from else None)
    except TrainingInterrupted as error:
        if trainer.is_global_zero:
            command = f"python train.py resume={run_dir.resolve()}"
            write_interrupted(run_dir, error, command)
            print(f"vaelab: {error}; saved {error.checkpoint}. Resume with: {command}", file=sys.stderr, flush=True)
            requeue(error)
        raise
    # A resumed run: plus the training time of the processes before it, up to its checkpoint.
    earlier = next((c.earlier for c in callbacks if isinstance(c, EpochLog)), 0.0)
    train_seconds = earlier + time.perf_counter() - start
    ckpt = checkpoint.best_model_path or None
    (results,) = trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, verbose=False)

    metrics = {key: float(value) for key, value in results.items()}
    metrics.update(
        epochs=trainer.current_epoch,
        train_seconds=round(train_seconds, 2),
        best_val_loss=float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else None,
        best_checkpoint=str(Path(ckpt).relative_to(run_dir)) if ckpt else None,
    )
    if not trainer.is_global_zero:  # DDP: the test metrics above are reduced over all processes already
        return metrics
    # `trainer.test` loaded the best checkpoint into `model`: IS log-likelihood, KL decomposition, holes.
    figure_dir = run_dir if cfg.figures.enabled else None  # figures.enabled=false: no pictures at all
    metrics.update(evaluate_test_set(model, datamodule, cfg, figure_dir))  # + sample quality (vaelab.quality)
    log_evaluation(trackers, cfg, metrics, step=trainer.current_epoch, run_dir=run_dir)
    log.info(format_table(metrics))
    atomic_write_json(run_dir / "metrics.json", metrics)
    (run_dir / INTERRUPTED_FILE).unlink(missing_ok=True)  # the run is complete now
    log.info(summary(cfg, metrics, run_dir))
    return metrics


def resume_checkpoint(cfg: DictConfig, run_dir: Path) -> tuple[str, int] | None:
    """(checkpoint, its global step) to resume from, or None for a fresh run: `cfg.resume`, else
    the checkpoint named by the run directory's `interrupted.json` (a run requeued by a scheduler,
    a sweep run again). The checkpoint must load, and the config must be the one saved in the run
    directory up to the keys a resume may change (`vaelab.resume.RESUMABLE_KEYS`)."""
    target = cfg.get("resume")
    marker = run_dir / INTERRUPTED_FILE
    if not target and marker.is_file():
        target = str(run_dir / json.loads(marker.read_text())["checkpoint"])
    if not target:
        return None
    path = Path(target)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        step = int(state["global_step"])
        state["state_dict"]  # noqa: B018
    except Exception as error:  # noqa: BLE001 - whatever a corrupt file raises, the message is one line
        raise ResumeError(f"resume={path}: not a readable training checkpoint "
                          f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'empty'})") from None
    if "loops" not in state or "optimizer_states" not in state:
        raise ResumeError(f"resume={path}: holds the weights only (a best-*.ckpt); resume from the run's "
                          "checkpoints/last.ckpt")  # fmt: skip
    saved = run_dir / "config.yaml"
    if saved.is_file():
        changed = changed_keys(yaml.safe_load(saved.read_text()) or {}, OmegaConf.to_container(cfg, resolve=True))
        if changed:
            raise ResumeError(f"resume={path}: {', '.join(changed)} differ from the run's config.yaml; a resumed run "
                              "keeps its config (start a new run to change them)")  # fmt: skip
    return str(path), step
