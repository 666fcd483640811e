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


def test_the_evaluation_reports_that_lars_estimates_log_p_and_with_what_error():
    import torch
    from torch.distributions import Independent, Normal

    from vaelab.evaluation.metrics import evaluate

    prior, encoder = build("lars", "trained")
    prior, encoder = prior.float(), encoder.float()  # as in a run
    p = prior.eval()()
    assert p.exact_log_prob is False and "100000 samples" in p.log_prob_estimator
    assert f"{float(p.log_z_stderr):.2g}" in p.log_prob_estimator
    x = torch.rand(6, 64) * 16
    decode = lambda z: Independent(Normal(torch.zeros(*z.shape[:-1], 64, dtype=z.dtype), 4.0), 1)
    with torch.no_grad():
        settings = dict(num_samples=5, num_latent_samples=50, exact=False)
        m = evaluate(x, encoder, decode, p, **settings)
        plain = evaluate(x, encoder, decode, Independent(Normal(torch.zeros(2), 1.0), 1), **settings)
    assert m["prior/exact_log_prob"] is False and m["prior/log_prob_estimator"] == p.log_prob_estimator
    assert plain["prior/exact_log_prob"] is True and "prior/log_prob_estimator" not in plain
