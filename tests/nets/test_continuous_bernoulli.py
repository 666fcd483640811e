"""The continuous Bernoulli likelihood (data continuous in [0, 1]): the decoder's p(x|z) is a
density on [0, 1] per pixel, which integrates to one, and the mean it reports is that density's."""

from __future__ import annotations

import torch

from vaelab.nets import MLPDecoder


def test_the_decoders_density_integrates_to_one_and_its_mean_is_the_densitys():
    torch.manual_seed(0)
    decoder = MLPDecoder(latent_dim=2, output_dim=5, hidden=8, num_layers=1, likelihood="continuous_bernoulli")
    z = torch.randn(3, 2) * 3  # far from 0 too: logits well away from the density's flat middle
    grid = torch.linspace(0, 1, 20_001, dtype=torch.float64)
    with torch.no_grad():
        pixels = decoder(z).base_dist  # (3, 5) independent densities
        density = pixels.log_prob(grid[:, None, None].float().expand(-1, 3, 5)).double().exp()
        mass = torch.trapezoid(density, grid, dim=0)
        mean = torch.trapezoid(density * grid[:, None, None], grid, dim=0)
        assert torch.allclose(mass, torch.ones(3, 5, dtype=torch.float64), atol=1e-4)
        # (torch's mean is a Taylor expansion within 0.001 of lambda = 1/2: good to about 1e-3 there)
        assert torch.allclose(decoder.mean(z).double(), mean, atol=1e-3)
        assert (pixels.probs.double() - mean).abs().max() > 0.05  # its parameter lambda is not its mean
        # the whole image: the sum of the pixels' log-densities
        x = torch.rand(3, 5)
        assert torch.allclose(decoder(z).log_prob(x), pixels.log_prob(x).sum(-1))
