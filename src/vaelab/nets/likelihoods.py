"""Pixel likelihoods p(x|z) of the decoders: what `dataset.likelihood` may name."""

from __future__ import annotations

import torch
from torch.distributions import Categorical, Distribution
from torch.distributions.utils import lazy_property, logits_to_probs

__all__ = ["LIKELIHOODS", "LazyCategorical"]

LIKELIHOODS = ("categorical", "bernoulli")


class LazyCategorical(Categorical):
    """torch's Categorical from unnormalised logits, normalised only when `logits` or `probs` is
    asked for. log_prob(x) = l[x] - logsumexp(l), the same numbers as Categorical's (l - logsumexp(l))[x]
    without writing the normalised (..., K) tensor first, which is most of the cost of a digits
    decoder's likelihood (64 pixels x 17 levels; `scripts/bench.py --mode everyday`)."""

    def __init__(self, logits: torch.Tensor, validate_args: bool | None = None):
        if logits.dim() < 1:
            raise ValueError("`logits` must be at least one-dimensional")
        self._param = self._raw = logits
        self._num_events = logits.shape[-1]
        Distribution.__init__(self, logits.shape[:-1], validate_args=validate_args)

    @lazy_property
    def logits(self) -> torch.Tensor:
        return self._raw - self._raw.logsumexp(-1, keepdim=True)

    @lazy_property
    def probs(self) -> torch.Tensor:
        return logits_to_probs(self.logits)

    def expand(self, batch_shape, _instance=None) -> LazyCategorical:
        return LazyCategorical(self._raw.expand(torch.Size(batch_shape) + (self._num_events,)), self._validate_args)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        index, raw = torch.broadcast_tensors(value.long().unsqueeze(-1), self._raw)
        return raw.gather(-1, index[..., :1]).squeeze(-1) - self._raw.logsumexp(-1)
