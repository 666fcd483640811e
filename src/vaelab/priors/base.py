"""What a prior p(z) provides, and small helpers that several priors share.

A prior is any `nn.Module` that `hydra.utils.instantiate` can build from a `conf/prior/*.yaml`
and that satisfies `Prior` below; vaelab never checks its class, so a prior written outside the
package (docs: Write your own prior) trains, is evaluated, drawn and reported like the
built-in ones.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

__all__ = ["Prior", "add_mixing_logits", "square_grid"]


@runtime_checkable
class Prior(Protocol):
    """p(z) over R^latent_dim, as an `nn.Module` whose call returns a torch Distribution.

    `prior(encoder) -> Distribution` (that is, `forward(encoder=None)`): built from the module's
    *current* parameters on every call, never cached, so gradients reach them. `encoder` is the
    VAE's encoder (`encoder(x)` is q(z|x); `encoder.gaussian_params(x)` its (mean, log-variance));
    a prior that does not go through the encoder ignores it. Parameters and buffers live in the
    module: `.to()`, the optimiser and checkpoints see them.

    The Distribution, for z of shape (*batch, latent_dim):
      - `log_prob(z)` -> (*batch,): one log-density per point (summed over latent dimensions),
        normalised, differentiable in the prior's parameters. The ELBO's KL term is
        log q(z|x) - log p(z) at z ~ q(z|x) (`vaelab.model`); the test likelihood importance-samples
        with it (`vaelab.evaluation`); the latent figure draws exp(log_prob) on a grid at latent_dim 2.
      - `sample(shape)` -> (*shape, latent_dim), no gradient needed: the figures' sample images and
        plot range, the density estimate at latent_dim > 2, and the evaluation's holes and
        reverse KL use it.
      - `rsample(shape)`: not called by vaelab (the ELBO samples q(z|x), not p(z)).
      - `mean`, `variance` (optional): the evaluation's per-dimension table; where they raise
        NotImplementedError (torch's default), moments of samples are used.
      - `log_z_stderr` (optional): for a density normalised by a Monte Carlo estimate of its
        constant, the standard error of that log-estimate, reported as test/prior_log_z_stderr.
      - `exact_log_prob` (optional, default True): False where `log_prob` is an estimate (lars);
        then `log_prob_estimator` says how it is estimated and with what error. The evaluation
        reports both (`prior/exact_log_prob`, `prior/log_prob_estimator`): the test NLL of such a
        prior is no longer the usual stochastic upper bound.

    Optional hooks on the module, found with hasattr:
      - `component_means(encoder) -> (K, latent_dim)`: a mixture's component means, drawn as
        markers in the latent figure.
      - `pseudo_inputs() -> (K, input_dim)`: drawn as an image grid; `input_min`, `input_max`
        attributes give their range (default: the data's).
      - `init_from_data(x)`: called by `vaelab.build` with the training inputs (N, input_dim)
        when the config says `prior.init: data`.

    Modes: validation, test, evaluation and the figures run with `model.eval()`; a prior may
    build a different (e.g. more accurate) Distribution in eval mode, as lars does for Z.
    """

    def __call__(self, encoder: nn.Module | None = None) -> Distribution: ...

    def parameters(self, recurse: bool = True): ...

    def state_dict(self, *args, **kwargs): ...


def add_mixing_logits(module: nn.Module, num_components: int, learnable: bool) -> None:
    """`module.logits`: uniform mixing weights, a parameter if learnable, else a fixed buffer."""
    logits = torch.zeros(num_components)
    if learnable:
        module.logits = nn.Parameter(logits)
    else:
        module.register_buffer("logits", logits)


def square_grid(side: int, half_range: float) -> Tensor:
    """side**2 points of a regular grid over [-half_range, half_range]^2, shape (side**2, 2)."""
    axis = torch.linspace(-half_range, half_range, side)
    return torch.cartesian_prod(axis, axis)
