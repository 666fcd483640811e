"""Post-hoc priors: fit a new prior to a trained VAE, its encoder and decoder frozen.

Is training encoder, decoder and prior at once best? The alternative trains in two stages: a VAE
first, then a flexible prior fitted to its aggregated posterior q(z) (ex-post density estimation,
Ghosh et al., 2020; the two-stage VAE, Dai & Wipf, 2019; pythae's post-hoc GMM/MAF samplers).
Here the second stage maximises the same ELBO as the first, over the new prior's parameters only:
with q(z|x) and p(x|z) fixed, E_q log p(x|z) and the entropy of q(z|x) are constants, so it
minimises the cross-entropy CE[q(z)‖p(z)] = E_q[−log p(z)] on the training split, and its
`val/loss` (the full −ELBO) is comparable with the joint run's. The fit is an ordinary
`vaelab.training.fit.run` (callbacks, early stopping, checkpoints, figures, test, `metrics.json`) of a
`PosthocVAE`, whose checkpoint any `VAE.load_from_checkpoint` reads as a VAE with the new prior.

    fit(run_dir, "mog", ["prior.num_components=32"])   # vaelab-fit-prior
    refit_job(cfg)                                     # vaelab.posthoc.jobs: after training, posthoc=[mog, flow]
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vaelab import rundir
from vaelab.config import check_config
from vaelab.errors import ConfigError, PosthocError
from vaelab.files import ATTEMPTS, atomic_write_json
from vaelab.model import VAE
from vaelab.nets.hierarchy import top_level
from vaelab.posthoc.setup import before_after, labelled, load_source, log_to, posthoc_config, source_prior
from vaelab.priors import HierarchicalPrior
from vaelab.rundir import RunDir
from vaelab.training.fit import build, hierarchical
from vaelab.training.fit import run as train_run
from vaelab.training.trackers import option_name

__all__ = ["PosthocVAE", "check_compatible", "fit"]

log = logging.getLogger(__name__)


class PosthocVAE(VAE):
    """A VAE whose encoder and decoder (and a hierarchical model's p(z1|z2)) stay as loaded: no
    gradients, always in eval mode, left out of the optimizer. Its arguments and checkpoints are
    the VAE's (the class is not stored in a checkpoint's hyperparameters), so
    `VAE.load_from_checkpoint` reads what it saves."""

    def frozen_parts(self) -> dict[str, torch.nn.Module]:
        """The trained parts, by their prefix in the state dict: everything but the new prior."""
        parts = {"encoder": self.encoder, "decoder": self.decoder}
        if isinstance(self.prior, HierarchicalPrior):  # the new prior is p(z2); p(z1|z2) is the run's
            parts["prior.conditional"] = self.prior.conditional
        return parts

    def freeze_autoencoder(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Copy the frozen parts' weights from a trained VAE's `state_dict` and freeze them."""
        for name, part in self.frozen_parts().items():
            part.load_state_dict(
                {k.removeprefix(f"{name}."): v for k, v in state_dict.items() if k.startswith(f"{name}.")}
            )
            part.requires_grad_(False)
            part.eval()

    def train(self, mode: bool = True) -> PosthocVAE:
        # Lightning switches the whole module to train mode at every epoch; the frozen parts stay in eval.
        super().train(mode)
        for part in self.frozen_parts().values():
            part.eval()
        return self

    def configure_optimizers(self) -> torch.optim.Optimizer:
        trainable = [p for p in self.prior.parameters() if p.requires_grad]
        return instantiate(self.hparams.optimizer, _partial_=True)(trainable)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        """The ELBO's step, or for a prior learnt as a noise-contrastive classifier (energy_ncp)
        its own loss: samples of the frozen q(z|x) (z2's for a hierarchical model) against the
        base prior's. Validation still reports the -ELBO, comparable with the joint run's."""
        prior = top_level(self.prior)
        if getattr(prior, "objective", None) != "ncp":
            return super().training_step(batch, batch_idx)
        with torch.no_grad():
            z = top_level(self.encode(batch[0])).sample()
        loss = prior.contrastive_loss(z, top_level(self.encoder))
        self.log("train/contrastive_loss", loss, on_step=False, on_epoch=True, batch_size=len(z))
        return loss


def check_compatible(cfg: DictConfig, source: VAE) -> None:
    """What can go wrong between the new prior and the run's frozen encoder, found before training:
    a prior with nothing to fit, latent sizes that differ, pseudo-inputs (vamp, vamp_data,
    gtm_vamp) of another size or range than the inputs the encoder was trained on, or an encoder
    without `gaussian_params`; then one log p(z) through the run's encoder, which must work."""
    name = cfg_prior_name(cfg)
    node = lambda key: OmegaConf.to_container(cfg[key], resolve=True)
    encoder, decoder = node("encoder"), node("decoder")
    if cfg.get("model", {}).get("name") == "hvae":  # the checkpoint holds the two-level networks
        encoder, decoder, _ = hierarchical(cfg, encoder, decoder, node("prior"))
    for part, saved in (("encoder", encoder), ("decoder", decoder)):
        if source.hparams[part] != saved:
            raise PosthocError(
                f"the run's config.yaml and its checkpoint describe different {part}s "
                f"({saved} against {source.hparams[part]}): the checkpoint is not this run's"
            )
    torch.manual_seed(cfg.seed)
    prior = instantiate(cfg.prior)
    if not any(p.requires_grad for p in prior.parameters()):
        raise PosthocError(f"prior={name} has no parameters to fit: choose a learnable prior")
    encoder = top_level(source.encoder)  # the prior's space: z2's, for a hierarchical model
    latent = getattr(encoder, "latent_dim", cfg.latent_dim)
    if latent != cfg.prior.latent_dim:
        raise PosthocError(
            f"prior.latent_dim={cfg.prior.latent_dim} is not allowed: the run's encoder has {latent} latent dimensions"
        )
    if hasattr(prior, "pseudo_inputs"):  # its components are q(z|u_k): the run's encoder sees the u_k
        if not hasattr(encoder, "gaussian_params"):
            raise PosthocError(
                f"prior={name} passes pseudo-inputs through the encoder's gaussian_params, which the "
                f"run's encoder ({type(encoder).__name__}) does not have"
            )
        size, wanted = prior.pseudo_inputs().shape[-1], getattr(encoder, "input_dim", None)
        if wanted is not None and size != wanted:
            raise PosthocError(
                f"prior={name} is not allowed for this run: its pseudo-inputs have {size} values "
                f"(prior.input_dim) but the run's encoder takes {wanted} inputs"
            )
        low, high = cfg.dataset.get("input_min"), cfg.dataset.get("input_max")
        if low is not None and not low <= prior.input_min < prior.input_max <= high:
            raise PosthocError(
                f"prior.input_min={prior.input_min}, prior.input_max={prior.input_max} are not allowed: "
                f"the run's encoder was trained on data in [{low}, {high}]"
            )
    try:
        with torch.no_grad():
            log_pz = prior(encoder).log_prob(torch.randn(4, latent))
        if log_pz.shape != (4,):
            raise ValueError(f"log_prob of 4 latent points has shape {tuple(log_pz.shape)}, not (4,)")
    except Exception as error:  # noqa: BLE001 - any failure here is this prior against this encoder
        raise PosthocError(
            f"prior={name} does not work with the run's encoder: {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}"
        ) from None


def cfg_prior_name(cfg: DictConfig) -> str:
    return option_name(str(cfg.prior._target_), "Prior")


def free_dir(base: Path) -> Path:
    """`base`, or `base_2`, `base_3`, … if it exists: a new fit never writes over an earlier one."""
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}_{n}")
    return path


def fit(
    run: str | Path,
    prior: str,
    overrides: list[str] = (),
    out: str | Path | None = None,
    config_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Fit `prior=<prior>` (with `prior.*` and other `overrides`) to the trained run in `run`,
    its encoder and decoder frozen, into `out` (default `<run>/posthoc/<prior>[_<n>]`). Every
    check happens before anything is written (PosthocError). Returns what `posthoc.json` holds."""
    run_dir, ckpt = load_source(Path(run))
    out_dir = Path(out) if out is not None else free_dir(RunDir(run_dir).posthoc(prior))
    if out_dir.exists() and any(path.name != ATTEMPTS for path in out_dir.iterdir()):
        raise PosthocError(f"out={out_dir} is not empty: choose a new directory")
    cfg, prior_overrides = posthoc_config(run_dir, prior, list(overrides), out_dir, config_dir or rundir.conf_dir())
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
    with log_to(RunDir(out_dir).log), labelled(prior, prior_overrides), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode")  # the frozen encoder and decoder
        metrics = train_run(cfg, build_model=build_frozen)
        record = {
            "source_run": str(run_dir),
            "source_checkpoint": str(ckpt),
            "source_prior": source_prior(run_dir),
            "prior": prior,
            "overrides": list(overrides),
            "out": str(out_dir),
            **before_after(run_dir, cfg, source, metrics),
            "seconds": round(time.perf_counter() - start, 2),
        }
        atomic_write_json(RunDir(out_dir).posthoc_record, record)
        log.info(summary_line(record, metrics))
    return record


def summary_line(record: dict[str, Any], metrics: dict[str, Any]) -> str:
    """`vaelab posthoc: standard → mog: test NLL 97.30 → 97.12, ELBO …, KL(q(z)‖p(z)) … → <dir>`."""
    parts = []
    for key, title, fmt in (
        ("test/nll", "test NLL", ".3f"),
        ("test/nll_exact", "exact NLL", ".3f"),
        ("test/elbo", "ELBO", ".3f"),
        ("test/marginal_kl", "KL(q(z)‖p(z))", ".4f"),
    ):
        before, after = record["before"].get(key), record["after"].get(key)
        if after is not None:
            parts.append(f"{title} {'?' if before is None else format(before, fmt)} → {format(after, fmt)}")
    return (
        f"vaelab posthoc: {record['source_prior']} → {record['prior']}: {', '.join(parts)} "
        f"({metrics['epochs']} epochs, {metrics['train_seconds']:.1f}s) → {record['out']}"
    )
