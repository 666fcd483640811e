"""The exemplar prior (Norouzi et al., "Exemplar VAE", NeurIPS 2020): a mixture over the training
set's encodings with one shared, learnt variance,

    p(z) = (1/N) sum_n N(z | mu(x_n), sigma^2 I),

where mu(x_n) is the encoder's mean of the n-th training input, through the current encoder, so
the encoder and sigma get gradients. Two things keep it from memorising the training set and from
costing N encoder passes a step:

- leave-one-out: in training, each example's own exemplar is left out of its p(z) (the model
  tells the prior its batch, `leave_out`); an identical copy of the example elsewhere in the
  training set counts as its own exemplar too;
- subsampling: in training, p(z) is built from `num_exemplars` exemplars drawn afresh at random at
  every step (null: all N). The training loss then uses the log of a mean over a random subset, a
  Monte Carlo estimate of log p(z) that is low on average (Jensen); validation, test, the
  evaluation and the figures (eval mode) use all N exemplars, exactly.

The exemplars are the training inputs, copied by `init_from_data` (`prior.init: data`) and kept
in the checkpoint, as uint8 when they are whole numbers in 0..255 (binary and grey-level data).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, constraints

__all__ = ["ExemplarMixture", "ExemplarPrior"]

# Encoder passes and mixture log-densities over the exemplars go this many at a time (memory).
BLOCK = 4096


# Row hashes: products of 32-bit patterns and 31-bit weights reduced below 2^50, so that sums of
# up to 8192 of them stay exact in int64.
HASH_MODULUS = 2**50 - 27


def row_hashes(x: Tensor, weights: Tensor) -> Tensor:
    """One int64 per row of x, equal for equal rows: the rows' float32 bit patterns times fixed
    random integers, modulo HASH_MODULUS, summed (in integers: the same whatever the order)."""
    bits = x.float().contiguous().view(torch.int32).long() & 0xFFFFFFFF
    return ((bits * weights) % HASH_MODULUS).sum(-1)


class ExemplarMixture(Distribution):
    """(1/M) sum_m N(z | mu_m, sigma^2 I) over the exemplars' means `mu` (M, L). With `exclude`
    (B, M), True where exemplar m is example b's own, log_prob of z (*sample, B, L) leaves those out
    of example b's mixture (and its 1/M)."""

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, mu: Tensor, log_sigma: Tensor, exclude: Tensor | None = None):
        self.mu, self.log_sigma, self.exclude = mu, log_sigma, exclude
        super().__init__(torch.Size(), torch.Size([mu.shape[-1]]), validate_args=False)

    def log_prob(self, z: Tensor) -> Tensor:
        dim = z.shape[-1]
        precision = torch.exp(-2 * self.log_sigma)
        centre = self.mu.mean(0).detach()  # smaller numbers lose less to cancellation in float32
        z, mu = z - centre, self.mu - centre
        total = torch.full(z.shape[:-1], -math.inf, dtype=z.dtype, device=z.device)
        for start in range(0, mu.shape[0], BLOCK):
            block = mu[start : start + BLOCK]
            squared = (z * z).sum(-1, keepdim=True) - 2 * z @ block.T + (block * block).sum(-1)
            terms = -0.5 * precision * squared
            if self.exclude is not None:
                terms = terms.masked_fill(self.exclude[:, start : start + BLOCK], -math.inf)
            total = torch.logaddexp(total, terms.logsumexp(-1))
        count = mu.shape[0] - (0 if self.exclude is None else self.exclude.sum(-1))
        log_normaliser = -dim * (self.log_sigma + 0.5 * math.log(2 * math.pi))
        return total + log_normaliser - torch.log(torch.as_tensor(count, dtype=z.dtype, device=z.device))

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        index = torch.randint(self.mu.shape[0], torch.Size(sample_shape), device=self.mu.device)
        return self.mu[index] + torch.exp(self.log_sigma) * torch.randn_like(self.mu[index])

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    @property
    def mean(self) -> Tensor:
        return self.mu.mean(0)

    @property
    def variance(self) -> Tensor:
        return self.mu.var(0, unbiased=False) + torch.exp(2 * self.log_sigma)


class ExemplarPrior(nn.Module):
    """p(z) = (1/N) sum_n N(z | mu(x_n), sigma^2 I) over the N training inputs x_n (see the module).

    `num_exemplars`: exemplars per training step, drawn at random (None: all); `init_log_sigma`:
    log sigma at the start; `init` must be "data" (the exemplars are the training inputs)."""

    def __init__(
        self,
        latent_dim: int,
        input_dim: int,
        num_exemplars: int | None = 1000,
        init_log_sigma: float = 0.0,
        init: str = "data",
    ):
        super().__init__()
        if init != "data":
            raise ValueError(f"prior.init={init!r} is not allowed: the exemplars are the training inputs, init=data")
        if num_exemplars is not None and num_exemplars < 1:
            raise ValueError(f"prior.num_exemplars={num_exemplars!r} is not allowed: a positive count or null (all)")
        self.latent_dim, self.input_dim, self.num_exemplars = latent_dim, input_dim, num_exemplars
        self.log_sigma = nn.Parameter(torch.tensor(float(init_log_sigma)))
        self.register_buffer("exemplars", torch.zeros(0, input_dim))
        weights = torch.randint(1, 2**31, (input_dim,), generator=torch.Generator().manual_seed(0))
        self.register_buffer("hash_weights", weights, persistent=False)
        self.register_buffer("hashes", torch.zeros(0, dtype=torch.long), persistent=False)
        self.batch_hashes: Tensor | None = None

    @torch.no_grad()
    def init_from_data(self, x: Tensor) -> None:
        """Keep the training inputs `x` (N, input_dim) as the exemplars."""
        x = x.reshape(x.shape[0], -1)
        whole = bool(((x == x.round()) & (x >= 0) & (x <= 255)).all())
        self._keep(x.to(torch.uint8) if whole else x.float())

    def _keep(self, exemplars: Tensor) -> None:
        self.exemplars = exemplars.to(self.hash_weights.device)
        self.hashes = row_hashes(self.exemplars, self.hash_weights)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args, **kwargs) -> None:
        saved = state_dict.get(prefix + "exemplars")
        if saved is not None:  # N and the dtype are the data's, not the empty buffer's
            self._keep(saved.clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def leave_out(self, x: Tensor | None) -> None:
        """The training batch p(z) is built for next (None: none): its examples' own exemplars are
        left out of their mixtures while the module is in training mode."""
        self.batch_hashes = None if x is None else row_hashes(x.reshape(x.shape[0], -1), self.hash_weights)

    def forward(self, encoder: nn.Module | None = None) -> ExemplarMixture:
        if encoder is None:
            raise ValueError("ExemplarPrior needs the encoder: call prior(encoder)")
        count = self.exemplars.shape[0]
        if count == 0:
            raise ValueError("ExemplarPrior has no exemplars: build it with init_from_data(training inputs)")
        index = None
        if self.training and self.num_exemplars is not None and self.num_exemplars < count:
            index = torch.randperm(count, device=self.exemplars.device)[: self.num_exemplars]
        chosen = self.exemplars if index is None else self.exemplars[index]
        dtype = self.log_sigma.dtype
        mu = torch.cat([encoder.gaussian_params(block.to(dtype))[0] for block in chosen.split(BLOCK)])
        exclude = None
        if self.training and self.batch_hashes is not None:
            hashes = self.hashes if index is None else self.hashes[index]
            exclude = self.batch_hashes[:, None] == hashes[None, :]
        return ExemplarMixture(mu, self.log_sigma, exclude)
