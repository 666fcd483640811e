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

from vaelab.errors import NonFiniteLossError

__all__ = ["VAE"]


class VAE(pl.LightningModule):
    def __init__(
        self,
        encoder: dict[str, Any],
        decoder: dict[str, Any],
        prior: dict[str, Any],
        optimizer: dict[str, Any],
        kl_warmup_epochs: int = 0,
        image_shape: list[int] | None = None,
        schedule: dict[str, Any] | None = None,
    ):
        super().__init__()
        # Stored in checkpoints, not sent to the loggers: they get `vaelab.training.trackers.run_hparams`.
        self.save_hyperparameters(logger=False)
        self.encoder = instantiate(encoder)
        self.decoder = instantiate(decoder)
        self.prior = instantiate(prior)
        # How the prior's parameters are optimised (the `schedule` group; None: joint). Alternating
        # updates step two optimizers by hand in `training_step`.
        self.schedule = dict(schedule or {"name": "joint"})
        self.automatic_optimization = self.schedule["name"] != "alternating"
        self.last_finite: dict[str, Any] = {}  # epoch, step and metrics of the last finite step
        self.train_sums: torch.Tensor | None = None
        self.restored_sums: tuple[int, torch.Tensor | None] | None = None  # from a checkpoint, see on_train_epoch_start
        self.frozen_prior: Distribution | None = None  # p(z) for a validation or test epoch

    # -- the public API: three Distributions with one log_prob per example ---------------
    def encode(self, x: torch.Tensor) -> Distribution:
        """q(z|x)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> Distribution:
        """p(x|z)."""
        return self.decoder(z)

    def prior_dist(self, batch: torch.Tensor | None = None) -> Distribution:
        """p(z), rebuilt from the current parameters (and, for vamp priors, the current encoder).
        `batch`: the training inputs it is built for, told to a prior with a `leave_out` hook (the
        exemplar prior leaves each example's own exemplar out of its p(z)); None otherwise."""
        if hasattr(self.prior, "leave_out"):
            self.prior.leave_out(batch)
        return self.prior(self.encoder)

    def elbo_terms(self, x: torch.Tensor, prior: Distribution | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-example (log p(x|z), log q(z|x) - log p(z)) at one reparameterised z ~ q(z|x).
        `prior`: p(z) if already built (default: `prior_dist()`, rebuilt from the parameters for
        this batch)."""
        q = self.encode(x)
        z = q.rsample()
        rec = self.decode(z).log_prob(x)
        if prior is None:
            prior = self.prior_dist(batch=x if self.training else None)
        kl = q.log_prob(z) - prior.log_prob(z)
        return rec, kl

    def kl_weight(self) -> float:
        """Linear KL warm-up: 0 at the first epoch, 1 from epoch `kl_warmup_epochs` on."""
        warmup = self.hparams.kl_warmup_epochs
        return 1.0 if warmup == 0 else min(1.0, self.current_epoch / warmup)

    # -- training -------------------------------------------------------------------------
    def _step(self, batch, stage: str) -> dict[str, torch.Tensor]:
        x = batch[0]
        rec, kl = self.elbo_terms(x, prior=None if stage == "train" else self.frozen_prior)
        beta = self.kl_weight() if stage == "train" else 1.0
        loss = -(rec - beta * kl).mean()
        metrics = {f"{stage}/loss": loss, f"{stage}/rec": rec.mean(), f"{stage}/kl": kl.mean()}
        if stage == "train":
            # Summed here and logged once per epoch (on_train_epoch_end): each self.log call costs
            # Lightning a fixed overhead per step, a noticeable share of a small model's CPU step.
            n = x.shape[0]
            sums = torch.stack([loss.detach() * n, rec.detach().sum(), kl.detach().sum(), loss.new_tensor(n)]).double()
            self.train_sums = sums if self.train_sums is None else self.train_sums + sums
            metrics["train/kl_weight"] = beta
            return metrics
        if stage == "test":  # test/rec, test/kl etc. come from vaelab.evaluation, over eval.num_samples samples
            metrics = {"test/loss": loss}
        # sync_dist: under DDP the epoch means are weighted over every process's examples (a no-op
        # in one process; epoch-level metrics only, so it costs one reduction per key and epoch).
        self.log_dict(
            metrics, on_step=False, on_epoch=True, prog_bar=stage != "test", batch_size=x.shape[0], sync_dist=True
        )
        return metrics

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        metrics = self._step(batch, "train")
        loss = metrics["train/loss"]
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"training loss is {value} at epoch {self.current_epoch}, global step {self.global_step} "
                f"(batch {batch_idx}); last finite metrics: {self.last_finite_metrics()}. "
                "Checkpoints saved before this step are kept; try a smaller optimizer.lr."
            )
        # Kept as tensors: turned into numbers only for the error message, not at every step.
        self.last_finite = {"epoch": self.current_epoch, "step": self.global_step, **metrics}
        if not self.automatic_optimization:
            self.alternate(batch[0], loss)
        return loss

    def alternate(self, x: torch.Tensor, loss: torch.Tensor) -> None:
        """schedule=alternating: a step of the encoder and decoder on this batch's loss, then
        `prior_steps` steps of the prior alone on the same batch. Only -log p(z) depends on the
        prior's parameters, so its steps take the gradient of beta * E_q[-log p(z)] at fresh
        z ~ q(z|x) of the updated encoder (no decoder pass)."""
        autoencoder, prior = self.optimizers()
        autoencoder.zero_grad()
        self.manual_backward(loss)
        autoencoder.step()
        for _ in range(self.schedule["prior_steps"]):
            with torch.no_grad():
                z = self.encode(x).sample()
            prior_loss = -self.kl_weight() * self.prior_dist(batch=x).log_prob(z).mean()
            prior.zero_grad()
            self.manual_backward(prior_loss)
            prior.step()

    def last_finite_metrics(self) -> dict[str, float] | str:
        """The epoch, step and metrics of the last training step with a finite loss, rounded."""
        if not self.last_finite:
            return "none (the first step failed)"
        return {key: round(float(v.detach()) if torch.is_tensor(v) else v, 4) for key, v in self.last_finite.items()}

    def on_train_epoch_start(self) -> None:
        # (loss, rec, kl) summed over the epoch's examples, and their number; a run resumed in the
        # middle of an epoch starts from the sums saved with its checkpoint.
        restored, self.restored_sums = self.restored_sums, None
        self.train_sums = restored[1] if restored is not None and restored[0] == self.current_epoch else None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["train_sums"] = (self.current_epoch, self.train_sums)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning does not call on_train_epoch_start again when it resumes mid-epoch.
        self.restored_sums = checkpoint.get("train_sums")
        if self.restored_sums is not None:
            self.train_sums = self.restored_sums[1]

    def on_train_epoch_end(self) -> None:
        if self.train_sums is None:
            return
        # Summed over every process's examples under DDP (a no-op in one process).
        loss, rec, kl, count = self.trainer.strategy.reduce(self.train_sums, reduce_op="sum").tolist()
        metrics = {"train/loss": loss / count, "train/rec": rec / count, "train/kl": kl / count}
        self.log_dict({**metrics, "train/kl_weight": self.kl_weight()}, prog_bar=True)

    def on_train_start(self) -> None:
        # DDP: every process starts from the same seed; give each its own stream of z ~ q(z|x), or
        # the noise of the batch slices would be identical, which changes training noticeably.
        if self.trainer.world_size > 1:
            torch.manual_seed((torch.initial_seed() + self.global_rank) % 2**63)

    # The parameters do not change during a validation or test epoch, so p(z) is built once for it:
    # for the VampPrior of the paper's preset that is one encoder pass over the 500 pseudo-inputs per
    # epoch instead of one per batch (five times the encoder work of the batch itself).
    def _freeze_prior(self) -> None:
        with torch.no_grad():
            self.frozen_prior = self.prior_dist()

    def on_validation_epoch_start(self) -> None:
        self._freeze_prior()

    def on_test_epoch_start(self) -> None:
        self._freeze_prior()

    def on_validation_epoch_end(self) -> None:
        self.frozen_prior = None

    def on_test_epoch_end(self) -> None:
        self.frozen_prior = None

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer | list[torch.optim.Optimizer]:
        """joint: one optimizer over every parameter; separate_lr: the prior's parameters in a group
        of their own at `prior_lr_factor` x the learning rate; alternating: two optimizers, the
        encoder's and decoder's and the prior's (a hierarchical model's p(z1|z2) included)."""
        make = instantiate(self.hparams.optimizer, _partial_=True)
        name = self.schedule["name"]
        if name == "joint":
            return make(self.parameters())
        prior = [p for p in self.prior.parameters() if p.requires_grad]
        theirs = {id(p) for p in prior}
        rest = [p for p in self.parameters() if id(p) not in theirs]
        group = {"params": prior, "lr": self.hparams.optimizer["lr"] * self.schedule["prior_lr_factor"]}
        if name == "separate_lr":
            return make([{"params": rest}, group])
        return [make(rest), make([group])]
