"""The decoder's categorical likelihood (vaelab.nets.LazyCategorical) against torch's Categorical."""

import pytest
import torch
from torch.distributions import Categorical

from vaelab.nets import LazyCategorical, MLPDecoder


def test_log_prob_and_gradient_equal_torch_categorical_exactly():
    torch.manual_seed(0)
    raw = (3 * torch.randn(5, 64, 17)).requires_grad_()
    x = torch.randint(0, 17, (5, 64)).float()
    ours, theirs = LazyCategorical(raw).log_prob(x), Categorical(logits=raw).log_prob(x)
    assert torch.equal(ours, theirs)
    (grad_ours,) = torch.autograd.grad(ours.sum(), raw)
    (grad_theirs,) = torch.autograd.grad(theirs.sum(), raw)
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=0, atol=1e-6)


def test_log_prob_broadcasts_like_torch_categorical():
    torch.manual_seed(1)
    raw = torch.randn(7, 1, 64, 17)  # a grid of 7 points against 3 inputs, as the quadrature asks
    x = torch.randint(0, 17, (3, 64))
    ours, theirs = LazyCategorical(raw).log_prob(x), Categorical(logits=raw).log_prob(x)
    assert ours.shape == (7, 3, 64)
    assert torch.equal(ours, theirs)


def test_probabilities_normalise_and_samples_follow_them():
    torch.manual_seed(2)
    raw = torch.randn(4, 5) * 2 + 10  # unnormalised
    dist = LazyCategorical(raw)
    torch.testing.assert_close(dist.logits, Categorical(logits=raw).logits)
    torch.testing.assert_close(dist.probs.sum(-1), torch.ones(4))
    torch.testing.assert_close(dist.log_prob(torch.arange(5)[:, None].expand(5, 4)).T.exp(), dist.probs)
    samples = dist.sample((40000,))
    frequencies = torch.stack([(samples == k).float().mean(0) for k in range(5)], -1)
    torch.testing.assert_close(frequencies, dist.probs, atol=0.015, rtol=0)
    assert dist.expand((3, 4)).log_prob(torch.zeros(3, 4)).shape == (3, 4)


def test_decoder_likelihood_and_mean_unchanged():
    torch.manual_seed(3)
    decoder = MLPDecoder(latent_dim=2, output_dim=64, num_levels=17)
    z, x = torch.randn(10, 2), torch.randint(0, 17, (10, 64)).float()
    px = decoder(z)
    logits = decoder.net(z).unflatten(-1, (64, 17))
    assert torch.equal(px.log_prob(x), Categorical(logits=logits).log_prob(x).sum(-1))
    expected_mean = Categorical(logits=logits).probs @ torch.arange(17.0)
    torch.testing.assert_close(decoder.mean(z), expected_mean)


def test_rejects_a_scalar():
    with pytest.raises(ValueError, match="one-dimensional"):
        LazyCategorical(torch.tensor(1.0))
