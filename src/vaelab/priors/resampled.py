"""The resampled prior LARS, "Learned Accept/Reject Sampling" (Bauer & Mnih, AISTATS 2019).

A proposal pi(z) = N(0, I) is reshaped by a learned acceptance function a(z) = sigmoid(net(z))
in (0, 1). Sampling is truncated rejection sampling: draw z ~ pi and keep it with probability
a(z), at most T - 1 times; the T-th proposal is kept whatever a says. Step t accepts with
probability (1 - Z)^(t-1) pi(z) a(z), Z = E_pi[a(z)], and step T is reached with probability
alpha_T = (1 - Z)^(T-1), so the density is exact once Z is known:

    p_T(z) = pi(z) [ (1 - alpha_T) a(z) / Z + alpha_T ].

Z has no closed form: it is a Monte Carlo average of a over proposal samples. In training, as in
the paper, its value is a running (exponential moving) average of the batch estimates and its
gradient is that of the current batch's estimate; in eval mode it is an average over
`eval_samples` proposals drawn from a fixed seed (so two calls give the same density), and the
distribution reports the standard error of log Z.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal, constraints

__all__ = ["ResampledNormal", "ResampledPrior"]


class ResampledNormal(Distribution):
    """p_T(z) = pi(z) [(1 - alpha_T) a(z) / Z + alpha_T], pi = N(loc, I), alpha_T = (1 - Z)^(T-1).

    `acceptance_logit` maps z (..., D) to logit a(z) (..., 1); `normaliser` is the estimate of
    Z = E_pi[a(z)] (a scalar tensor, with the gradient the training wants); `log_z_stderr`
    the standard error of its log where known. There is no rsample: accepting or rejecting is
    not differentiable in z.
    """

    arg_constraints = {}
    support = constraints.real_vector
    has_rsample = False
    exact_log_prob = False  # Z is a Monte Carlo estimate

    def __init__(
        self,
        acceptance_logit: Callable[[Tensor], Tensor],
        normaliser: Tensor,
        truncation: int,
        loc: Tensor,
        log_z_stderr: Tensor | None = None,
        log_prob_estimator: str = "Z = E_pi[a(z)] by Monte Carlo",
    ):
        self.acceptance_logit, self.truncation = acceptance_logit, int(truncation)
        self.log_prob_estimator = log_prob_estimator
        # a(z) < 1 in exact arithmetic; float rounding can give Z = 1, where log(1 - Z) is -inf.
        self.normaliser = normaliser.clamp(max=1 - torch.finfo(normaliser.dtype).eps)
        self.log_z_stderr = log_z_stderr
        self.proposal = Independent(Normal(loc, torch.ones_like(loc)), 1)
        super().__init__(batch_shape=torch.Size(), event_shape=loc.shape, validate_args=False)

    @property
    def log_z(self) -> Tensor:
        return torch.log(self.normaliser)

    def log_acceptance(self, z: Tensor) -> Tensor:
        """log a(z), one value per point."""
        return nn.functional.logsigmoid(self.acceptance_logit(z)).squeeze(-1)

    def log_prob(self, z: Tensor) -> Tensor:
        log_pi = self.proposal.log_prob(z)
        if self.truncation == 1:  # every first proposal is kept: p = pi
            return log_pi
        log_alpha = (self.truncation - 1) * torch.log1p(-self.normaliser)
        log_accepted_before_t = torch.log(-torch.expm1(log_alpha)) + self.log_acceptance(z) - self.log_z
        return log_pi + torch.logaddexp(log_accepted_before_t, log_alpha)

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        """Truncated rejection sampling, all examples at once: each round proposes one z for every
        example still waiting, so the acceptance network runs at most T - 1 times whatever the
        number of samples."""
        n = math.prod(sample_shape)
        out = self.proposal.sample((n,))
        waiting = torch.arange(n, device=out.device)
        for _ in range(self.truncation - 1):
            if len(waiting) == 0:
                break
            z = self.proposal.sample((len(waiting),))
            keep = torch.rand(len(waiting), device=z.device, dtype=z.dtype) < torch.exp(self.log_acceptance(z))
            out[waiting[keep]] = z[keep]
            waiting = waiting[~keep]
        out[waiting] = self.proposal.sample((len(waiting),))  # step T: kept unconditionally
        return out.reshape(*sample_shape, *self.event_shape)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        raise NotImplementedError(
            "the lars prior has no reparameterised samples (accept/reject is not differentiable); use sample()"
        )


class ResampledPrior(nn.Module):
    """LARS over N(0, I): a(z) = sigmoid(MLP(z)) with two tanh hidden layers of `hidden` units,
    rejection truncated after `truncation` proposals (T = 100 by default, as in the paper).

    Training: Z's value is an exponential moving average (decay `ema_decay`) of the estimates from
    `num_samples` fresh proposals per call, its gradient the current estimate's, as in the paper:
    Z_train = Z_batch + stop_gradient(Z_ema - Z_batch). The average is a buffer,
    so it is saved with checkpoints. Eval mode: Z from `eval_samples` proposals of a fixed seed.
    """

    def __init__(
        self,
        latent_dim: int,
        hidden: int = 100,
        truncation: int = 100,
        num_samples: int = 1024,
        eval_samples: int = 100_000,
        ema_decay: float = 0.99,
    ):
        super().__init__()
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay={ema_decay!r} is not allowed: must be in [0, 1)")
        self.truncation, self.num_samples, self.eval_samples, self.ema_decay = (
            truncation,
            num_samples,
            eval_samples,
            ema_decay,
        )
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1)
        )
        self.register_buffer("loc", torch.zeros(latent_dim))
        self.register_buffer("z_ema", torch.tensor(float("nan")))  # nan until the first training call

    def acceptance(self, z: Tensor) -> Tensor:
        """a(z) in (0, 1), one value per point."""
        return torch.sigmoid(self.net(z)).squeeze(-1)

    def estimate_z(
        self, num_samples: int, generator: torch.Generator | None = None, chunk: int = 50_000
    ) -> tuple[Tensor, Tensor]:
        """Z = mean of a(z_s) over num_samples proposals z_s ~ N(0, I), and the standard error of log Z."""
        step = min(chunk, num_samples)
        like = dict(generator=generator, device=self.loc.device, dtype=self.loc.dtype)
        a = torch.cat(
            [
                self.acceptance(torch.randn(min(step, num_samples - start), *self.loc.shape, **like))
                for start in range(0, num_samples, step)
            ]
        )
        z = a.mean()
        return z, a.detach().std() / (math.sqrt(num_samples) * z.detach())  # delta method: se(log Z) = se(Z) / Z

    def forward(self, encoder: nn.Module | None = None) -> Distribution:
        if self.training:
            batch_z, _ = self.estimate_z(self.num_samples)
            with torch.no_grad():
                first = torch.isnan(self.z_ema)
                self.z_ema.copy_(
                    torch.where(first, batch_z, self.ema_decay * self.z_ema + (1 - self.ema_decay) * batch_z)
                )
            return ResampledNormal(self.net, batch_z + (self.z_ema - batch_z).detach(), self.truncation, self.loc)
        generator = torch.Generator(device=self.loc.device).manual_seed(0)
        z, log_z_stderr = self.estimate_z(self.eval_samples, generator)
        estimator = (
            f"Z = E_pi[a(z)] over {self.eval_samples} samples of pi (seeded): every log p(z) shares the error of "
            f"log Z, {float(log_z_stderr):.2g} (standard error), and so does the NLL"
        )
        return ResampledNormal(self.net, z, self.truncation, self.loc, log_z_stderr, estimator)
