"""The convolutional encoder q(z|x) and decoder p(x|z), for data with an image shape.

They take and give the same flat vectors and Distributions as the MLPs (`vaelab.nets.mlp`), so
every prior works with them; the VampPrior's pseudo-inputs are then images. A flat example of
`image_shape` (H, W) or (H, W, C) holds its pixels in row-major (H, W, C) order, as the datasets
store them; the networks see (C, H, W).

The blocks are the gated convolutions of the VampPrior paper's convolutional models (Tomczak &
Welling, 2018): h * sigmoid(g), each of h and g a convolution.

- encoder: convolutions with the given channels, kernel sizes and strides (padding k // 2, so a
  stride of 2 halves the side, rounding up), then one linear layer to the mean and log-variance;
  the default is the paper's: 32, 32, 64, 64, 6 channels, kernels 7, 3, 5, 3, 3, strides 1, 2, 1, 2, 1.
- decoder: one gated linear layer from z to a map of `map_channels` at the image's size, then
  convolutions of `kernel` at full resolution with the given channels (the paper's: four of 64),
  then a 1x1 convolution to the likelihood's numbers per pixel and channel.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from vaelab.nets.layers import GatedLinear
from vaelab.nets.likelihoods import PixelLikelihood

__all__ = ["ConvDecoder", "ConvEncoder", "GatedConv2d"]


class GatedConv2d(nn.Module):
    """h * sigmoid(g) with h and g convolutions of the same shape (padding kernel // 2)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1):
        super().__init__()
        self.h = nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2)
        self.g = nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.h(x) * torch.sigmoid(self.g(x))


def _block(in_channels: int, out_channels: int, kernel: int, stride: int, activation: str) -> nn.Module:
    if activation == "gated":
        return GatedConv2d(in_channels, out_channels, kernel, stride)
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2), nn.LeakyReLU())


def _hwc(image_shape) -> tuple[int, int, int]:
    shape = [int(side) for side in image_shape]
    return (shape[0], shape[1], shape[2] if len(shape) == 3 else 1)


def to_maps(x: torch.Tensor, image_shape) -> torch.Tensor:
    """Flat (..., H*W*C) examples → (B, C, H, W) with B the product of the leading dimensions."""
    h, w, c = _hwc(image_shape)
    return x.reshape(-1, h, w, c).permute(0, 3, 1, 2)


class ConvEncoder(nn.Module):
    """q(z|x) = N(mu(x), diag(exp(logvar(x)))) from gated convolutions and one linear layer."""

    def __init__(
        self,
        input_dim: int,
        latent_dim: int,
        image_shape: list[int],
        channels: list[int] = (32, 32, 64, 64, 6),
        kernels: list[int] = (7, 3, 5, 3, 3),
        strides: list[int] = (1, 2, 1, 2, 1),
        activation: str = "gated",
        input_scale: float = 1.0,
        logvar_min: float | None = None,
        logvar_max: float | None = None,
    ):
        super().__init__()
        self.input_dim, self.latent_dim, self.image_shape = input_dim, latent_dim, list(image_shape)
        self.input_scale = float(input_scale)
        self.logvar_min, self.logvar_max = logvar_min, logvar_max
        h, w, width = _hwc(image_shape)
        layers = []
        for out, kernel, stride in zip(channels, kernels, strides, strict=True):
            layers.append(_block(width, out, kernel, stride, activation))
            width = out
        self.convs = nn.Sequential(*layers)
        with torch.no_grad():  # the size of the last map, for the linear layer
            features = self.convs(torch.zeros(1, _hwc(image_shape)[2], h, w)).numel()
        self.head = nn.Linear(features, 2 * latent_dim)

    def gaussian_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lead = x.shape[:-1]
        if self.input_scale != 1.0:
            x = x / self.input_scale
        mu, logvar = self.head(self.convs(to_maps(x, self.image_shape)).flatten(1)).chunk(2, dim=-1)
        if self.logvar_min is not None or self.logvar_max is not None:
            logvar = torch.clamp(logvar, self.logvar_min, self.logvar_max)
        return mu.reshape(*lead, -1), logvar.reshape(*lead, -1)

    def forward(self, x: torch.Tensor) -> Distribution:
        mu, logvar = self.gaussian_params(x)
        return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)


class ConvDecoder(nn.Module):
    """p(x|z), factorised over pixels (`PixelLikelihood`), from a gated linear map of z at the
    image's size and gated convolutions at full resolution."""

    def __init__(
        self,
        latent_dim: int,
        output_dim: int,
        image_shape: list[int],
        map_channels: int = 1,
        channels: list[int] = (64, 64, 64, 64),
        kernel: int = 3,
        activation: str = "gated",
        likelihood: str = "categorical",
        num_levels: int = 17,
    ):
        super().__init__()
        self.output_dim, self.image_shape = output_dim, list(image_shape)
        self.likelihood, self.num_levels = likelihood, num_levels
        self.pixels = PixelLikelihood(likelihood, num_levels)
        h, w, c = _hwc(image_shape)
        self.map_shape = (map_channels, h, w)
        first = GatedLinear(latent_dim, map_channels * h * w)
        self.to_map = first if activation == "gated" else nn.Sequential(first.h, nn.LeakyReLU())
        layers, width = [], map_channels
        for out in channels:
            layers.append(_block(width, out, kernel, 1, activation))
            width = out
        layers.append(nn.Conv2d(width, c * self.pixels.per_pixel, 1))
        self.convs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> Distribution:
        lead = z.shape[:-1]
        h, w, c = _hwc(self.image_shape)
        maps = self.convs(self.to_map(z.reshape(-1, z.shape[-1])).reshape(-1, *self.map_shape))
        per_pixel = self.pixels.per_pixel  # (B, C*P, H, W) → (..., H*W*C, P), the data's pixel order
        params = maps.reshape(-1, c, per_pixel, h, w).permute(0, 3, 4, 1, 2).reshape(*lead, h * w * c, per_pixel)
        return self.pixels.distribution(params)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z] in data units: what the figures show for a latent point."""
        return self.pixels.mean(self(z))
