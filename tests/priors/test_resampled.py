"""The resampled prior (lars): its normaliser Z in training is a running average of batch estimates."""

from __future__ import annotations

import pytest
from helpers.priors import build

pytestmark = pytest.mark.usefixtures("one_thread")


def test_lars_running_estimate_of_z_is_the_training_value_and_follows_the_evaluation_estimate():
    """In training Z's value is the moving average and its gradient the batch estimate's; with the
    network held fixed, the average settles on the large-sample estimate of eval mode."""
    prior, _ = build("lars", "trained")
    exact = float(prior.eval()().normaliser.detach())
    prior.train()
    for _ in range(1000):  # 10 time constants of decay 0.99: the value from training is forgotten ...
        dist = prior()
    assert float(dist.normaliser.detach()) == float(prior.z_ema)
    assert float(prior.z_ema) == pytest.approx(exact, rel=0.01)  # ... and ~100 batches averaged
    dist.log_z.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in prior.net.parameters())
