"""Post-hoc priors: fit a new prior to a trained VAE, its encoder and decoder frozen.

Is training encoder, decoder and prior at once best? The alternative trains in two stages: a VAE
first, then a flexible prior fitted to its aggregated posterior q(z) (ex-post density estimation,
Ghosh et al., 2020; the two-stage VAE, Dai & Wipf, 2019; pythae's post-hoc GMM/MAF samplers).
Here the second stage maximises the same ELBO as the first, over the new prior's parameters only:
with q(z|x) and p(x|z) fixed, E_q log p(x|z) and the entropy of q(z|x) are constants, so it
minimises the cross-entropy CE[q(z)‖p(z)] = E_q[−log p(z)] on the training split, and its
`val/loss` (the full −ELBO) is comparable with the joint run's. The fit is an ordinary
`vaelab.train.run` (callbacks, early stopping, checkpoints, figures, test, `metrics.json`) of a
`PosthocVAE`, whose checkpoint any `VAE.load_from_checkpoint` reads as a VAE with the new prior.

    fit(run_dir, "mog", ["prior.num_components=32"])   # scripts/fit_prior.py
    refit_job(cfg)                                     # after training, for `posthoc=[mog, flow]`
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from vaelab.config import check_config
from vaelab.errors import ConfigError
from vaelab.files import ATTEMPTS, atomic_write_json, set_aside
from vaelab.interrupt import TrainingInterrupted
from vaelab.model import VAE
from vaelab.posthoc_setup import before_after, labelled, load_source, log_to, posthoc_config, source_prior

log = logging.getLogger(__name__)

POSTHOC_DIR = "posthoc"  # <run>/posthoc/<prior>: the refits of a run
DONE_FILE = "posthoc.json"  # written last: the refit is complete (source, prior, before, after)
FAILED_FILE = "failed.json"
CONF = Path(__file__).resolve().parents[2] / "conf"  # the checkout's conf/ (an editable install)


class PosthocError(ConfigError):
    """A post-hoc fit cannot start: not a run, an unknown prior or key, an incompatible encoder."""


class PosthocVAE(VAE):
    """A VAE whose encoder and decoder stay as loaded: no gradients, always in eval mode, left out
    of the optimizer. Its arguments and checkpoints are the VAE's (the class is not stored in a
    checkpoint's hyperparameters), so `VAE.load_from_checkpoint` reads what it saves."""

    def freeze_autoencoder(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Copy the encoder's and decoder's weights from a trained VAE's `state_dict` and freeze them."""
        for name in ("encoder", "decoder"):
            part = getattr(self, name)
            part.load_state_dict({k.removeprefix(f"{name}."): v for k, v in state_dict.items() if k.startswith(f"{name}.")})
            part.requires_grad_(False)
            part.eval()

    def train(self, mode: bool = True) -> PosthocVAE:
        # Lightning switches the whole module to train mode at every epoch; the frozen parts stay in eval.
        super().train(mode)
        self.encoder.eval()
        self.decoder.eval()
        return self

    def configure_optimizers(self) -> torch.optim.Optimizer:
        trainable = [p for p in self.prior.parameters() if p.requires_grad]
        return instantiate(self.hparams.optimizer, _partial_=True)(trainable)


def check_compatible(cfg: DictConfig, source: VAE) -> None:
    """What can go wrong between the new prior and the run's frozen encoder, found before training:
    a prior with nothing to fit, latent sizes that differ, pseudo-inputs (vamp, vamp_data,
    gtm_vamp) of another size or range than the inputs the encoder was trained on, or an encoder
    without `gaussian_params`; then one log p(z) through the run's encoder, which must work."""
    name = cfg_prior_name(cfg)
    for part in ("encoder", "decoder"):
        saved = OmegaConf.to_container(cfg[part], resolve=True)
        if source.hparams[part] != saved:
            raise PosthocError(f"the run's config.yaml and its checkpoint describe different {part}s "
                               f"({saved} against {source.hparams[part]}): the checkpoint is not this run's")  # fmt: skip
    torch.manual_seed(cfg.seed)
    prior = instantiate(cfg.prior)
    if not any(p.requires_grad for p in prior.parameters()):
        raise PosthocError(f"prior={name} has no parameters to fit: choose a learnable prior")
    encoder = source.encoder
    latent = getattr(encoder, "latent_dim", cfg.latent_dim)
    if latent != cfg.prior.latent_dim:
        raise PosthocError(f"prior.latent_dim={cfg.prior.latent_dim} is not allowed: the run's encoder has "
                           f"{latent} latent dimensions")  # fmt: skip
    if hasattr(prior, "pseudo_inputs"):  # its components are q(z|u_k): the run's encoder sees the u_k
        if not hasattr(encoder, "gaussian_params"):
            raise PosthocError(f"prior={name} passes pseudo-inputs through the encoder's gaussian_params, which the "
                               f"run's encoder ({type(encoder).__name__}) does not have")  # fmt: skip
        size, wanted = prior.pseudo_inputs().shape[-1], getattr(encoder, "input_dim", None)
        if wanted is not None and size != wanted:
            raise PosthocError(f"prior={name} is not allowed for this run: its pseudo-inputs have {size} values "
                               f"(prior.input_dim) but the run's encoder takes {wanted} inputs")  # fmt: skip
        low, high = cfg.dataset.get("input_min"), cfg.dataset.get("input_max")
        if low is not None and not low <= prior.input_min < prior.input_max <= high:
            raise PosthocError(f"prior.input_min={prior.input_min}, prior.input_max={prior.input_max} are not allowed: "
                               f"the run's encoder was trained on data in [{low}, {high}]")  # fmt: skip
    try:
        with torch.no_grad():
            log_pz = prior(encoder).log_prob(torch.randn(4, latent))
        if log_pz.shape != (4,):
            raise ValueError(f"log_prob of 4 latent points has shape {tuple(log_pz.shape)}, not (4,)")
    except Exception as error:  # noqa: BLE001 - any failure here is this prior against this encoder
        raise PosthocError(f"prior={name} does not work with the run's encoder: {type(error).__name__}: "
                           f"{str(error).splitlines()[0] if str(error) else ''}") from None


def cfg_prior_name(cfg: DictConfig) -> str:
    from vaelab.tracking import option_name

    return option_name(str(cfg.prior._target_), "Prior")


def free_dir(base: Path) -> Path:
    """`base`, or `base_2`, `base_3`, … if it exists: a new fit never writes over an earlier one."""
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}_{n}")
    return path


def fit(run: str | Path, prior: str, overrides: list[str] = (), out: str | Path | None = None,
        config_dir: str | Path | None = None) -> dict[str, Any]:  # fmt: skip
    """Fit `prior=<prior>` (with `prior.*` and other `overrides`) to the trained run in `run`,
    its encoder and decoder frozen, into `out` (default `<run>/posthoc/<prior>[_<n>]`). Every
    check happens before anything is written (PosthocError). Returns what `posthoc.json` holds."""
    from vaelab.train import build, run as train_run

    run_dir, ckpt = load_source(Path(run), PosthocError)
    out_dir = Path(out) if out is not None else free_dir(run_dir / POSTHOC_DIR / prior)
    if out_dir.exists() and any(path.name != ATTEMPTS for path in out_dir.iterdir()):
        raise PosthocError(f"out={out_dir} is not empty: choose a new directory")
    cfg, prior_overrides = posthoc_config(run_dir, prior, list(overrides), out_dir, config_dir or CONF, PosthocError)
    try:
        check_config(cfg)
    except ConfigError as error:
        raise PosthocError(str(error)) from None
    try:
        source = VAE.load_from_checkpoint(ckpt, map_location="cpu")
    except Exception as error:  # noqa: BLE001 - torch and Lightning raise many kinds for a bad file
        raise PosthocError(f"{ckpt}: not a readable vaelab checkpoint ({str(error).splitlines()[0]})") from None
    source.eval()
    check_compatible(cfg, source)
    state = source.state_dict()

    def build_frozen(cfg: DictConfig, datamodule) -> PosthocVAE:
        model = build(cfg, datamodule, model_class=PosthocVAE)
        model.freeze_autoencoder(state)
        return model

    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    with log_to(out_dir / "train.log"), labelled(prior, prior_overrides), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode")  # the frozen encoder and decoder
        metrics = train_run(cfg, build_model=build_frozen)
        record = {
            "source_run": str(run_dir), "source_checkpoint": str(ckpt), "source_prior": source_prior(run_dir),
            "prior": prior, "overrides": list(overrides), "out": str(out_dir),
            **before_after(run_dir, cfg, source, metrics), "seconds": round(time.perf_counter() - start, 2),
        }  # fmt: skip
        atomic_write_json(out_dir / DONE_FILE, record)
        log.info(summary_line(record, metrics))
    return record


def summary_line(record: dict[str, Any], metrics: dict[str, Any]) -> str:
    """`vaelab posthoc: standard → mog: test NLL 97.30 → 97.12, ELBO …, KL(q(z)‖p(z)) … → <dir>`."""
    parts = []
    for key, title, fmt in (("test/nll", "test NLL", ".3f"), ("test/nll_exact", "exact NLL", ".3f"),
                            ("test/elbo", "ELBO", ".3f"), ("test/marginal_kl", "KL(q(z)‖p(z))", ".4f")):  # fmt: skip
        before, after = record["before"].get(key), record["after"].get(key)
        if after is not None:
            parts.append(f"{title} {'?' if before is None else format(before, fmt)} → {format(after, fmt)}")
    return (f"vaelab posthoc: {record['source_prior']} → {record['prior']}: {', '.join(parts)} "
            f"({metrics['epochs']} epochs, {metrics['train_seconds']:.1f}s) → {record['out']}")  # fmt: skip


# -- after a training run: `posthoc=[mog, flow]` -----------------------------------------------
def requested(cfg: DictConfig) -> list[str]:
    """The prior options `cfg.posthoc` asks to refit (null, a name or a list of names), each checked
    against the `prior` group's options, before training starts."""
    value = cfg.get("posthoc")
    names = [] if value is None else [value] if isinstance(value, str) else list(value) if isinstance(
        value, (list, ListConfig)) else None  # fmt: skip
    if names is None or not all(isinstance(name, str) and name for name in names):
        raise ConfigError(f"posthoc={value!r} is not allowed: must be null, a prior option or a list of them")
    options = prior_options()
    for name in names:
        if options and name not in options:
            raise ConfigError(f"posthoc={name} is not allowed: choose prior options from {', '.join(options)}")
    return names


def prior_options() -> list[str]:
    """The `prior` group's options: Hydra's search path inside an app (with --config-dir), else conf/prior/."""
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return sorted(GlobalHydra.instance().config_loader().get_group_options("prior"))
    return sorted(path.stem for path in (CONF / "prior").glob("*.yaml"))


def refit_job(cfg: DictConfig) -> list[str]:
    """The refits `cfg.posthoc` asks for, after the run in `cfg.run_dir` has been trained, each
    into `<run>/posthoc/<prior>`. A refit already done (its `posthoc.json`) is skipped, so running a
    sweep again does not refit twice; an unfinished or failed one is set aside and done again. A
    failure is written to that refit's `failed.json` and does not stop the others. Returns the
    names that failed."""
    from pytorch_lightning.utilities import rank_zero_only

    if rank_zero_only.rank != 0:  # a DDP run's other processes: the refit is process 0's, on one device
        return []
    run_dir, failed = Path(cfg.run_dir), []
    for name in requested(cfg):
        out = run_dir / POSTHOC_DIR / name
        if (out / DONE_FILE).is_file():
            log.info("post-hoc %s of %s was fitted earlier: skipped", name, run_dir.name)
            continue
        if out.is_dir() and any(path.name != ATTEMPTS for path in out.iterdir()):
            log.info("post-hoc %s: the unfinished attempt is in %s; fitting again", name, set_aside(out))
        try:
            fit(run_dir, name, out=out)
        except TrainingInterrupted:
            raise  # a signal stops the sweep, as during training; running it again fits this prior afresh
        except Exception as error:  # noqa: BLE001 - one refit's failure is its own
            failed.append(name)
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(out / FAILED_FILE, {"error": type(error).__name__, "message": str(error)})
            log.error("post-hoc %s of %s failed: %s: %s", name, run_dir.name, type(error).__name__, error)
    return failed
