"""Pixel likelihoods p(x|z) of the decoders: what `dataset.likelihood` may name."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Categorical, ContinuousBernoulli, Distribution, Independent, constraints
from torch.distributions.utils import broadcast_all, lazy_property, logits_to_probs

__all__ = ["LIKELIHOODS", "DiscretizedLogistic", "LazyCategorical", "PixelLikelihood"]

# continuous_bernoulli: torch's ContinuousBernoulli (Loaiza-Ganem & Cunningham, 2019), a proper density
# on [0, 1] for data that are continuous there (the Bernoulli's log_prob on such data is not one).
LIKELIHOODS = ("categorical", "bernoulli", "discretized_logistic", "continuous_bernoulli")


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


class DiscretizedLogistic(Distribution):
    """A logistic distribution discretized to the integers 0..num_levels-1 (grey levels in data
    units): level k has the logistic's mass on [k - 1/2, k + 1/2], and the tails below 1/2 and above
    num_levels - 3/2 go to the end levels, so the probabilities of all levels sum to one (Salimans et
    al., 2017, PixelCNN++; the VampPrior paper's grey-level likelihood over 256 levels, whose end
    bins lose the tails).

    With a = (k + 1/2 - loc) / scale and b = a - 1/scale, the mass of an inner level is
        log(sigmoid(a) - sigmoid(b)) = a + log(1 - exp(-1/scale)) - softplus(a) - softplus(b),
    which stays accurate far in the tails, where both sigmoids round to 0 or to 1.
    """

    arg_constraints = {"loc": constraints.real, "log_scale": constraints.real}
    has_rsample = False

    def __init__(self, loc: torch.Tensor, log_scale: torch.Tensor, num_levels: int = 256, validate_args=None):
        self.loc, self.log_scale = broadcast_all(loc, log_scale)
        self.num_levels = int(num_levels)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.num_levels - 1)

    @property
    def mean(self) -> torch.Tensor:
        return (
            self.probs_of_levels() * torch.arange(self.num_levels, dtype=self.loc.dtype, device=self.loc.device)
        ).sum(-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        inverse_scale = torch.exp(-self.log_scale)
        a = (value + 0.5 - self.loc) * inverse_scale  # the bin's upper edge, standardised
        b = a - inverse_scale  # its lower edge
        inner = a + torch.log(-torch.expm1(-inverse_scale)) - F.softplus(a) - F.softplus(b)
        lowest = -F.softplus(-a)  # log sigmoid(a): everything below the first bin's upper edge
        highest = -F.softplus(b)  # log (1 - sigmoid(b)): everything above the last bin's lower edge
        return torch.where(value <= 0, lowest, torch.where(value >= self.num_levels - 1, highest, inner))

    def probs_of_levels(self) -> torch.Tensor:
        """The probability of every level: shape batch_shape + (num_levels,)."""
        levels = torch.arange(self.num_levels, dtype=self.loc.dtype, device=self.loc.device)
        expanded = DiscretizedLogistic(self.loc.unsqueeze(-1), self.log_scale.unsqueeze(-1), self.num_levels)
        return expanded.log_prob(levels).exp()

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            uniform = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device).clamp(1e-6, 1 - 1e-6)
            logistic = self.loc + torch.exp(self.log_scale) * (torch.log(uniform) - torch.log1p(-uniform))
            return logistic.round().clamp(0, self.num_levels - 1)


class PixelLikelihood:
    """The per-pixel part of a decoder, shared by the MLP and convolutional ones: how many numbers a
    network gives per pixel for the likelihood, and the Distribution over the flat image they make.

    `likelihood` is one of LIKELIHOODS; a discretized logistic has its location in 0..num_levels-1
    through a sigmoid and its log-scale bounded below by LOG_SCALE_MIN."""

    LOG_SCALE_MIN = -3.0  # a scale of 0.05 grey levels: all but certain of one level

    def __init__(self, likelihood: str, num_levels: int):
        self.likelihood, self.num_levels = likelihood, num_levels

    @property
    def per_pixel(self) -> int:
        return {"categorical": self.num_levels, "discretized_logistic": 2}.get(self.likelihood, 1)

    def distribution(self, params: torch.Tensor) -> Distribution:
        """params (..., D, per_pixel) → p(x|z) over the D pixels (an Independent over the last dim)."""
        if self.likelihood == "categorical":
            # Data arrive as floats in 0..num_levels-1; validation would cost a pass per call.
            return Independent(LazyCategorical(params, validate_args=False), 1)
        if self.likelihood == "discretized_logistic":
            location, log_scale = params.unbind(-1)
            location = (self.num_levels - 1) * torch.sigmoid(location)
            log_scale = log_scale.clamp_min(self.LOG_SCALE_MIN)
            return Independent(DiscretizedLogistic(location, log_scale, self.num_levels, validate_args=False), 1)
        if self.likelihood == "continuous_bernoulli":
            return Independent(ContinuousBernoulli(logits=params.squeeze(-1), validate_args=False), 1)
        return Independent(Bernoulli(logits=params.squeeze(-1), validate_args=False), 1)

    def mean(self, dist: Distribution) -> torch.Tensor:
        """E[x|z] in data units, of a distribution made by `distribution`."""
        base = dist.base_dist
        if self.likelihood == "categorical":
            return base.probs @ torch.arange(self.num_levels, dtype=base.probs.dtype, device=base.probs.device)
        if self.likelihood in ("discretized_logistic", "continuous_bernoulli"):
            return base.mean  # (a continuous Bernoulli's parameter is not its mean)
        return base.probs
