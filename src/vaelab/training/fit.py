"""One training run: config → objects → fit → test on the best checkpoint → files.

`run(cfg)` is what `vaelab-train` calls; `build(cfg)` is the part notebooks want.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.utilities import rank_zero_only

from vaelab import rundir
from vaelab.config import check_config, complete_dataset
from vaelab.errors import ConfigError, ResumeError, WriteError
from vaelab.evaluation.runner import evaluate_test_set
from vaelab.evaluation.table import format_table
from vaelab.files import atomic_write_json, atomic_write_text
from vaelab.model import VAE
from vaelab.rundir import RunDir, read_json, read_yaml
from vaelab.training import trackers
from vaelab.training.checkpoints import BackgroundCheckpointIO, LatestCheckpoint, RandomStreams
from vaelab.training.early_stopping import WarmupEarlyStopping
from vaelab.training.latent_figures import LatentFigures
from vaelab.training.logs import EpochLog, use_progress_bar
from vaelab.training.resume import changed_keys
from vaelab.training.signals import GracefulStop, TrainingInterrupted, requeue, write_interrupted

__all__ = ["build", "resume_command", "run"]

log = logging.getLogger(__name__)


def build(cfg: DictConfig, datamodule: pl.LightningDataModule | None = None, model_class: type[VAE] = VAE) -> VAE:
    """A fresh VAE from a composed config. With `prior.init=data` the pseudo-inputs are copied
    from the training split of `datamodule` (built from the config when not given). `model_class`:
    a subclass of VAE with the same arguments (`vaelab.posthoc.fit.PosthocVAE` trains the prior only)."""
    check_config(cfg, machine=False, files=False)  # a model only: no trainer, no files read here
    node = lambda key: OmegaConf.to_container(cfg[key], resolve=True)
    encoder, decoder, prior = node("encoder"), node("decoder"), node("prior")
    if cfg.get("model", {}).get("name") == "hvae":
        encoder, decoder, prior = hierarchical(cfg, encoder, decoder, prior)
    model = model_class(
        encoder=encoder,
        decoder=decoder,
        prior=prior,
        optimizer=node("optimizer"),
        kl_warmup_epochs=cfg.kl_warmup_epochs,
        image_shape=list(cfg.dataset.image_shape),
        schedule=node("schedule") if cfg.get("schedule") else None,
    )
    if cfg.prior.get("init") == "data":
        if datamodule is None:
            datamodule = instantiate(cfg.dataset.datamodule)
        datamodule.setup("fit")
        model.prior.init_from_data(datamodule.splits["train"][0])
    return model


def hierarchical(cfg: DictConfig, encoder: dict, decoder: dict, prior: dict) -> tuple[dict, dict, dict]:
    """model=hvae: the encoder and prior of the config become the top level's, q(z2|x) and p(z2),
    inside the two-level encoder and prior; the decoder reads [z1, z2]."""
    hvae = OmegaConf.to_container(cfg.model, resolve=True)
    bounds = {"logvar_min": hvae["logvar_min"], "logvar_max": hvae["logvar_max"]}
    layers = {"hidden": hvae["hidden"], "activation": hvae["activation"], **bounds}
    encoder = {
        "_target_": "vaelab.nets.HierarchicalEncoder",
        "top": encoder,
        "bottom_dim": hvae["bottom_dim"],
        "input_dim": cfg.dataset.input_dim,
        "input_scale": encoder.get("input_scale", 1.0),
        "num_layers": hvae["encoder_layers"],
        **layers,
    }
    prior = {
        "_target_": "vaelab.priors.HierarchicalPrior",
        "top": prior,
        "bottom_dim": hvae["bottom_dim"],
        "top_dim": cfg.latent_dim,
        "num_layers": hvae["prior_layers"],
        **layers,
    }
    return encoder, {**decoder, "latent_dim": hvae["bottom_dim"] + cfg.latent_dim}, prior


def loggers(cfg: DictConfig, purge_step: int | None = None) -> list:
    """The experiment trackers of the `logger` group, told the run's hyperparameters at once
    (the `hp/` metrics follow at the end, from `log_evaluation`)."""
    built = trackers.build_loggers(cfg, purge_step)
    trackers.log_hparams(built, trackers.run_hparams(cfg))
    return built


def reporting_callbacks(cfg: DictConfig, run_dir: Path, progress_bar: bool) -> list[pl.Callback]:
    """What the run shows and draws while it trains: the epoch lines and the figures."""
    callbacks: list[pl.Callback] = [
        EpochLog(cfg.log.every_n_epochs, terminal=progress_bar, monitor=cfg.early_stopping.monitor)
    ]
    if progress_bar:  # redrawn every few steps, not at each: the bar's redraws cost as much as a digits step
        callbacks.append(TQDMProgressBar(refresh_rate=cfg.log.get("refresh_rate", 1)))
    if cfg.figures.enabled:
        callbacks.append(LatentFigures(run_dir, every_n_epochs=cfg.figures.every_n_epochs))
    return callbacks


def summary(cfg: DictConfig, metrics: dict, run_dir: Path) -> str:
    """The last line of a run: what it trained, and the test NLL and ELBO of the evaluation."""
    best_val = "none (no validation ran)" if metrics["best_val_loss"] is None else f"{metrics['best_val_loss']:.3f}"
    prior = trackers.run_hparams(cfg)["prior"]
    test = (
        f"test NLL={metrics['test/nll']:.3f} (S={metrics['eval']['num_samples']}) ELBO={metrics['test/elbo']:.3f} "
        if "test/nll" in metrics
        else "no test evaluation (eval.test=false) "
    )
    return (
        f"vaelab: prior={prior} latent_dim={cfg.latent_dim} epochs={metrics['epochs']} best val/loss={best_val} "
        f"{test}({metrics['train_seconds']:.1f}s training) → {run_dir}"
    )


def resume_command(run_dir: str | Path) -> str:
    """The command that continues the run in `run_dir`."""
    return f"vaelab-train resume={Path(run_dir).resolve()}"


def run(
    cfg: DictConfig, build_model: Callable[[DictConfig, pl.LightningDataModule], VAE] | None = None
) -> dict[str, float]:
    """Train, test the best checkpoint, and write the run directory. Returns the test metrics
    (with `eval.test=false`: the training's alone, `best_val_loss` among them).
    `build_model(cfg, datamodule)` makes the model to train (default `build`: a fresh VAE; a
    post-hoc fit passes one whose encoder and decoder are a trained run's, frozen).

    With `cfg.resume` (a checkpoint; `vaelab-train resume=<run>` sets it), or when the run
    directory holds an `interrupted.json`, training continues from that checkpoint with every
    state restored. A signal during training raises `TrainingInterrupted` after `last.ckpt` and
    `interrupted.json` are written (`vaelab.training.signals`). A file that cannot be written
    (a full disk) raises `WriteError`, whose one line names the file, the complete checkpoint that
    is kept and the command that resumes from it."""
    complete_dataset(cfg)  # own data: the keys its images or arrays decide
    check_config(cfg)
    if build_model is None and OmegaConf.select(cfg, "prior.objective", default=None) == "ncp":
        raise ConfigError(
            "prior.objective=ncp is not allowed in training: the classifier is fitted after it, "
            "vaelab-fit-prior <run> prior=energy_ncp, or posthoc=energy_ncp"
        )
    run = RunDir(cfg.run_dir)
    resume_from = resume_checkpoint(cfg, run)  # checked before anything is written
    try:
        return _run(cfg, run, resume_from, build_model or build)
    except WriteError as error:
        raise write_failure(run, error) from None
    except OSError as error:  # a writer that is not vaelab's: TensorBoard's, Lightning's, matplotlib's
        raise write_failure(run, WriteError.of(error.filename or "a file of the run", error)) from None


def _run(cfg: DictConfig, run: RunDir, resume_from: tuple[str, int] | None, build_model) -> dict[str, float]:
    run_dir = run.path
    run_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:  # the other processes of a DDP run share this directory
        atomic_write_text(run.config, OmegaConf.to_yaml(cfg, resolve=True))

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.dataset.datamodule)
    datamodule.setup("fit")  # read the data now: a missing or malformed file stops the run here
    model = build_model(cfg, datamodule)

    # The best epoch's weights, for the test (the full training state is in last.ckpt).
    checkpoint = ModelCheckpoint(
        dirpath=run.checkpoints,
        filename=rundir.BEST,
        monitor=cfg.early_stopping.monitor,
        auto_insert_metric_name=False,
        save_weights_only=True,
        enable_version_counter=False,  # a resumed run rewrites the same files
    )
    latest = LatestCheckpoint(run.last, every_seconds=cfg.checkpoint.last_every_seconds)
    early_stopping = WarmupEarlyStopping(
        monitor=cfg.early_stopping.monitor, patience=cfg.early_stopping.patience, warmup_epochs=cfg.kl_warmup_epochs
    )
    progress_bar = use_progress_bar(cfg)
    callbacks = [
        checkpoint,
        latest,
        early_stopping,
        RandomStreams(),
        GracefulStop(run.last),
        *reporting_callbacks(cfg, run_dir, progress_bar),
    ]
    # Resuming: TensorBoard hides events after the checkpoint's step (logged before a hard kill).
    experiment_trackers = loggers(cfg, purge_step=resume_from[1] + 1 if resume_from else None)
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=experiment_trackers or False,
        enable_progress_bar=progress_bar,
        plugins=[BackgroundCheckpointIO()],
    )

    start = time.perf_counter()
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from[0] if resume_from else None)
    except TrainingInterrupted as error:
        if trainer.is_global_zero:
            command = resume_command(run_dir)
            write_interrupted(run_dir, error, command)
            print(f"vaelab: {error}; saved {error.checkpoint}. Resume with: {command}", file=sys.stderr, flush=True)
            requeue(error)
        raise
    # A resumed run: plus the training time of the processes before it, up to its checkpoint.
    earlier = next((c.earlier for c in callbacks if isinstance(c, EpochLog)), 0.0)
    train_seconds = earlier + time.perf_counter() - start
    ckpt = checkpoint.best_model_path or None
    metrics = {}
    testing = cfg.eval.get("test", True)  # configs written before the key: always
    if testing:  # eval.test=false: a trial of a hyperparameter search, judged by val/loss alone
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
    if testing:
        # `trainer.test` loaded the best checkpoint into `model`: IS log-likelihood, KL decomposition, holes.
        figure_dir = run_dir if cfg.figures.enabled else None  # figures.enabled=false: no pictures at all
        metrics.update(evaluate_test_set(model, datamodule, cfg, figure_dir))  # and the quality of samples
        trackers.log_evaluation(experiment_trackers, cfg, metrics, step=trainer.current_epoch, run_dir=run_dir)
        log.info(format_table(metrics))
    atomic_write_json(run.metrics, metrics)
    run.interrupted.unlink(missing_ok=True)  # the run is complete now
    log.info(summary(cfg, metrics, run_dir))
    return metrics


def write_failure(run: RunDir, error: WriteError) -> WriteError:
    """The one line for a file that could not be written: which file, what is kept, what to do."""
    kept = complete_checkpoint(run.last)
    best = [path for path in run.best_checkpoints() if path.stat().st_size > 0]
    if kept is not None:
        advice = (
            f"the complete checkpoint {run.last} (epoch {kept[0]}, step {kept[1]}) is kept; free space, "
            f"then resume with: {resume_command(run.path)}"
        )
    elif best:
        advice = (
            f"no training checkpoint to resume from was written yet, only the best weights {best[-1]} "
            f"(vaelab-evaluate tests them); free space, then start the run again"
        )
    else:
        advice = f"no checkpoint was written yet; free space, then start the run again in {run.path}"
    failure = WriteError(f"{error}; {advice}")
    failure.errno, failure.filename = error.errno, error.filename
    return failure


def complete_checkpoint(path: Path) -> tuple[int, int] | None:
    """(epoch, global step) of the training checkpoint at `path`, None if there is none that loads."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return int(state["epoch"]), int(state["global_step"])
    except Exception:  # noqa: BLE001 - missing, truncated, or not a training checkpoint: none is kept
        return None


def resume_checkpoint(cfg: DictConfig, run: RunDir) -> tuple[str, int] | None:
    """(checkpoint, its global step) to resume from, or None for a fresh run: `cfg.resume`, else
    the checkpoint named by the run directory's `interrupted.json` (a run requeued by a scheduler,
    a sweep run again). The checkpoint must load, and the config must be the one saved in the run
    directory up to the keys a resume may change (`vaelab.training.resume.RESUMABLE_KEYS`)."""
    target = cfg.get("resume")
    marker = read_json(run.interrupted)
    if not target and marker:
        target = str(run.path / marker["checkpoint"])
    if not target:
        return None
    path = Path(target)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        step = int(state["global_step"])
        state["state_dict"]
    except Exception as error:  # noqa: BLE001 - whatever a corrupt file raises, the message is one line
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'empty'}"
        raise ResumeError(f"resume={path}: not a readable training checkpoint ({reason})") from None
    if "loops" not in state or "optimizer_states" not in state:
        raise ResumeError(
            f"resume={path}: holds the weights only (a best-*.ckpt); resume from the run's checkpoints/last.ckpt"
        )
    saved = read_yaml(run.config)
    if saved:
        changed = changed_keys(saved, OmegaConf.to_container(cfg, resolve=True))
        if changed:
            raise ResumeError(
                f"resume={path}: {', '.join(changed)} differ from the run's config.yaml; a resumed run "
                "keeps its config (start a new run to change them)"
            )
    return str(path), step
