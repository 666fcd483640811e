"""The VAE as a LightningModule: ELBO = log p(x|z) + log p(z) - log q(z|x) at z ~ q(z|x).

The module is built from plain dicts (the resolved `encoder`, `decoder`, `prior` and
`optimizer` config nodes), which Lightning stores as hyperparameters; so
`VAE.load_from_checkpoint(path)` rebuilds the same networks and prior with no config at hand.
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from torch.distributions import Distribution


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class VAE(pl.LightningModule):
    def __init__(
        self,
        encoder: dict[str, Any],
        decoder: dict[str, Any],
        prior: dict[str, Any],
        optimizer: dict[str, Any],
        kl_warmup_epochs: int = 0,
        image_shape: list[int] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.encoder = instantiate(encoder)
        self.decoder = instantiate(decoder)
        self.prior = instantiate(prior)
        self.last_finite: dict[str, float] = {}

    # -- the public API: three Distributions with one log_prob per example ---------------
    def encode(self, x: torch.Tensor) -> Distribution:
        """q(z|x)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> Distribution:
        """p(x|z)."""
        return self.decoder(z)

    def prior_dist(self) -> Distribution:
        """p(z), rebuilt from the current parameters (and, for vamp priors, the current encoder)."""
        return self.prior(self.encoder)

    def elbo_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-example (log p(x|z), log q(z|x) - log p(z)) at one reparameterised z ~ q(z|x)."""
        q = self.encode(x)
        z = q.rsample()
        rec = self.decode(z).log_prob(x)
        kl = q.log_prob(z) - self.prior_dist().log_prob(z)
        return rec, kl

    def kl_weight(self) -> float:
        """Linear KL warm-up: 0 at the first epoch, 1 from epoch `kl_warmup_epochs` on."""
        warmup = self.hparams.kl_warmup_epochs
        return 1.0 if warmup == 0 else min(1.0, self.current_epoch / warmup)

    # -- training -------------------------------------------------------------------------
    def _step(self, batch, stage: str) -> dict[str, torch.Tensor]:
        x = batch[0]
        rec, kl = self.elbo_terms(x)
        beta = self.kl_weight() if stage == "train" else 1.0
        loss = -(rec - beta * kl).mean()
        metrics = {f"{stage}/loss": loss, f"{stage}/rec": rec.mean(), f"{stage}/kl": kl.mean()}
        if stage == "train":
            metrics["train/kl_weight"] = beta
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=stage != "test", batch_size=x.shape[0])
        return metrics

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        metrics = self._step(batch, "train")
        loss = metrics["train/loss"]
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"training loss is {value} at epoch {self.current_epoch}, global step {self.global_step} "
                f"(batch {batch_idx}); last finite metrics: {self.last_finite or 'none (the first step failed)'}. "
                "Checkpoints saved before this step are kept; try a smaller optimizer.lr."
            )
        self.last_finite = {"epoch": self.current_epoch, "step": self.global_step}
        self.last_finite.update({key: round(float(v.detach()) if torch.is_tensor(v) else v, 4) for key, v in metrics.items()})
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return instantiate(self.hparams.optimizer, _partial_=True)(self.parameters())
