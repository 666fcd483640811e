"""An energy-reweighted prior: a base prior b(z) (N(0, I), or any vaelab prior) reweighted by a
learnt energy,

    p(z) = b(z) exp(-E(z)) / Z,   Z = E_b[exp(-E(z))],

with E a small network. Two ways to learn E:

- `objective: joint`: with the VAE, by the ELBO, log p(z) replaced in training by the bound of
  self-normalised importance sampling (SNIS, Lawson et al., 2019): with K = `num_samples` fresh base
  samples z_k,

      log p(z) >= log b(z) - E(z) - log[(exp(-E(z)) + sum_k exp(-E(z_k))) / (K + 1)],

  a lower bound on the log-density of the distribution that resampling from K + 1 base samples draws
  from, which tends to b exp(-E) / Z as K grows. z's own weight in the normaliser caps what a peaked
  energy gains at log(K + 1): with the pool alone, whose log-mean is low on average, the ELBO
  rewards an energy peaked where no base sample lands without bound;
- `objective: ncp`: after training, as a noise-contrastive classifier between the aggregated
  posterior's samples and the base's (NCP, Aneja et al., 2021): the logit -E(z) of the best
  classifier is log q(z)/b(z), so b exp(-E) / Z is q(z). A post-hoc fit only
  (`vaelab-fit-prior <run> prior=energy_ncp`).

Z has no closed form: eval mode estimates it from `eval_samples` base samples of a fixed seed and
reports the standard error of log Z, which every log p(z), and so the NLL, shares. Samples come
by sampling-importance-resampling: each draws one of `resample_from` base samples with weights
exp(-E) (exact as that pool grows).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, constraints

from vaelab.nets.layers import mlp
from vaelab.priors.mixtures import StandardPrior

__all__ = ["EnergyPrior", "EnergyReweighted", "OBJECTIVES"]

OBJECTIVES = ("joint", "ncp")
POOL_POINTS = 1_000_000  # base samples held at once when resampling


class EnergyReweighted(Distribution):
    """b(z) exp(-E(z)) / Z over the base Distribution `base`, with `log_z` estimated."""

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = False
    exact_log_prob = False

    def __init__(
        self,
        base: Distribution,
        energy: nn.Module,
        log_z: Tensor,
        log_z_stderr: Tensor | None,
        resample_from: int,
        estimator: str,
        pool_size: int | None = None,
    ):
        """`pool_size`: log_prob is the SNIS bound of the module's docstring, `log_z` the pool's
        log-mean of exp(-E) over that many base samples; None: log_prob is b exp(-E) / exp(log_z)."""
        self.base, self.energy, self.log_z, self.log_z_stderr = base, energy, log_z, log_z_stderr
        self.resample_from, self.log_prob_estimator, self.pool_size = resample_from, estimator, pool_size
        super().__init__(torch.Size(), base.event_shape, validate_args=False)

    def log_prob(self, z: Tensor) -> Tensor:
        log_w = -self.energy(z).squeeze(-1)
        if self.pool_size is None:
            return self.base.log_prob(z) + log_w - self.log_z
        pool_log_sum = self.log_z + math.log(self.pool_size)
        log_z = torch.logaddexp(log_w, pool_log_sum) - math.log(self.pool_size + 1)  # z's own weight joins the pool
        return self.base.log_prob(z) + log_w - log_z

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        n = math.prod(sample_shape)
        chunk = max(1, POOL_POINTS // self.resample_from)  # samples resampled at once, bounding memory
        parts = []
        for start in range(0, n, chunk):
            pool = self.base.sample((self.resample_from, min(chunk, n - start)))  # (pool, m, L)
            choice = torch.distributions.Categorical(logits=-self.energy(pool).squeeze(-1).T).sample()  # (m,)
            parts.append(pool[choice, torch.arange(pool.shape[1], device=pool.device)])
        return torch.cat(parts).reshape(*sample_shape, *self.event_shape)


class EnergyPrior(nn.Module):
    """p(z) = b(z) exp(-E(z)) / Z over `base` (default N(0, I)), E of `num_layers` LeakyReLU layers
    of `hidden` units, its output layer initialised near zero (p close to b at the start). See the
    module for `objective`."""

    def __init__(
        self,
        latent_dim: int,
        base: nn.Module | None = None,
        hidden: int = 64,
        num_layers: int = 2,
        objective: str = "joint",
        num_samples: int = 1024,
        eval_samples: int = 100_000,
        resample_from: int = 100,
    ):
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"prior.objective={objective!r} is not allowed: choose one of {', '.join(OBJECTIVES)}")
        self.base = base if base is not None else StandardPrior(latent_dim)
        self.objective, self.num_samples, self.eval_samples = objective, num_samples, eval_samples
        self.resample_from = resample_from
        self.net = mlp(latent_dim, hidden, num_layers, 1, "leaky_relu")
        nn.init.normal_(self.net[-1].weight, std=1e-3)  # near p = b, with gradients for every layer
        nn.init.zeros_(self.net[-1].bias)

    def log_z(self, base: Distribution, num_samples: int, seeded: bool = False) -> tuple[Tensor, Tensor]:
        """(log Z, its standard error by the delta method) from `num_samples` base samples; the
        gradient is the estimate's. `seeded`: the samples of a fixed random stream (eval mode, so
        that every evaluation uses the same Z), the global stream left as it was."""
        device = next(self.net.parameters()).device
        if seeded:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(0)
                z = base.sample((num_samples,))
        else:
            z = base.sample((num_samples,))
        log_w = -self.net(z).squeeze(-1)
        log_z = log_w.logsumexp(0) - math.log(num_samples)
        w = torch.exp(log_w - log_w.max()).detach().double()
        return log_z, w.std() / (math.sqrt(num_samples) * w.mean())

    def contrastive_loss(self, z_posterior: Tensor, encoder: nn.Module | None = None) -> Tensor:
        """NCP's loss: a logistic classifier with logit -E(z), aggregated-posterior samples
        `z_posterior` (label 1) against as many base samples (label 0)."""
        z_base = self.base(encoder).sample(z_posterior.shape[:-1])
        logits = -self.net(torch.cat([z_posterior, z_base])).squeeze(-1)
        labels = torch.cat([torch.ones(len(z_posterior)), torch.zeros(len(z_base))]).to(logits)
        return nn.functional.binary_cross_entropy_with_logits(logits, labels)

    def forward(self, encoder: nn.Module | None = None) -> EnergyReweighted:
        base = self.base(encoder)
        if self.training:
            log_z, _ = self.log_z(base, self.num_samples)
            estimator = f"the SNIS bound over {self.num_samples} fresh base samples and z itself"
            return EnergyReweighted(base, self.net, log_z, None, self.resample_from, estimator, self.num_samples)
        with torch.no_grad():
            log_z, stderr = self.log_z(base, self.eval_samples, seeded=True)
        estimator = (
            f"Z = E_b[exp(-E(z))] over {self.eval_samples} base samples (seeded): every log p(z) shares the "
            f"error of log Z, {float(stderr):.2g} (standard error), and so does the NLL"
        )
        return EnergyReweighted(base, self.net, log_z, stderr, self.resample_from, estimator)
