"""One training run: config → objects → fit → test on the best checkpoint → files.

`run(cfg)` is what `python train.py` calls; `build(cfg)` is the part notebooks want.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.utilities import rank_zero_only

from vaelab import tracking
from vaelab.callbacks import LatentFigures
from vaelab.config import check_config
from vaelab.evaluate import evaluate_test_set, format_table, log_evaluation
from vaelab.logs import EpochLog, use_progress_bar
from vaelab.model import VAE, WarmupEarlyStopping

log = logging.getLogger(__name__)


def build(cfg: DictConfig, datamodule: pl.LightningDataModule | None = None) -> VAE:
    """A fresh VAE from a composed config. With `prior.init=data` the pseudo-inputs are copied
    from the training split of `datamodule` (built from the config when not given)."""
    check_config(cfg)
    node = lambda key: OmegaConf.to_container(cfg[key], resolve=True)  # noqa: E731
    model = VAE(
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


def loggers(cfg: DictConfig) -> list:
    """The experiment trackers of the `logger` group, told the run's hyperparameters at once
    (the `hp/` metrics follow at the end, from `log_evaluation`)."""
    trackers = tracking.build_loggers(cfg)
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


def run(cfg: DictConfig) -> dict[str, float]:
    """Train, test the best checkpoint, and write the run directory. Returns the test metrics."""
    check_config(cfg)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:  # the other processes of a DDP run share this directory
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.dataset.datamodule)
    datamodule.setup("fit")  # read the data now: a missing or malformed file stops the run here
    model = build(cfg, datamodule)

    checkpoint = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best-{epoch:03d}",
        monitor=cfg.early_stopping.monitor,
        auto_insert_metric_name=False,
    )
    # The latest epoch, overwritten every epoch (Lightning's save_last only follows the best's saves).
    latest = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last", monitor=None, enable_version_counter=False)
    early_stopping = WarmupEarlyStopping(
        monitor=cfg.early_stopping.monitor, patience=cfg.early_stopping.patience, warmup_epochs=cfg.kl_warmup_epochs
    )
    progress_bar = use_progress_bar(cfg)
    callbacks = [checkpoint, latest, early_stopping, *reporting_callbacks(cfg, run_dir, progress_bar)]
    trackers = loggers(cfg)
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=trackers or False,
                                      enable_progress_bar=progress_bar)  # fmt: skip

    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    train_seconds = time.perf_counter() - start
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
    metrics.update(evaluate_test_set(model, datamodule, cfg))
    log_evaluation(trackers, cfg, metrics, step=trainer.current_epoch)
    log.info(format_table(metrics))
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log.info(summary(cfg, metrics, run_dir))
    return metrics

