"""The convolutional encoder and decoder: the same flat vectors and Distributions as the MLPs, for
any image shape (square, not square, colour) and any leading batch dimensions; the decoder's
numbers land on the data's own pixel order; every prior trains with them."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import CHEAP_EVAL, PRIORS, compose_config

import vaelab
from vaelab.errors import ConfigError
from vaelab.nets import ConvDecoder, ConvEncoder
from vaelab.nets.conv import to_maps

pytestmark = pytest.mark.usefixtures("one_thread")
SHAPES = [[8, 8], [28, 20], [5, 4, 3]]
SMALL = dict(channels=[4, 4], kernels=[3, 3], strides=[1, 2])


@pytest.mark.parametrize("image_shape", SHAPES, ids=str)
@pytest.mark.parametrize("likelihood", ["categorical", "bernoulli", "discretized_logistic", "continuous_bernoulli"])
def test_any_image_shape_and_batch_shape_give_one_log_probability_per_example(image_shape, likelihood):
    torch.manual_seed(0)
    dim, levels = math.prod(image_shape), {"categorical": 17, "discretized_logistic": 256}.get(likelihood, 2)
    top = {"bernoulli": 1, "continuous_bernoulli": 1}.get(likelihood, levels - 1)
    encoder = ConvEncoder(dim, 3, image_shape, **SMALL, input_scale=top)  # as the configs set it
    decoder = ConvDecoder(3, dim, image_shape, channels=[4], likelihood=likelihood, num_levels=levels)
    x = torch.randint(0, top + 1, (6, dim)).float() if likelihood != "continuous_bernoulli" else torch.rand(6, dim)
    q = encoder(x)
    assert q.batch_shape == (6,) and q.event_shape == (3,)
    z = q.rsample((5,))  # (S, N, L), as the importance-sampled likelihood draws
    px = decoder(z)
    assert px.batch_shape == (5, 6) and px.event_shape == (dim,)
    log_px = px.log_prob(x)
    assert log_px.shape == (5, 6) and torch.isfinite(log_px).all()
    # the same numbers example by example: nothing mixes across the batch
    assert torch.allclose(decoder(z[2, 4]).log_prob(x[4]), log_px[2, 4], atol=1e-4)
    assert torch.allclose(encoder.gaussian_params(x[1:2])[0], encoder.gaussian_params(x)[0][1:2], atol=1e-6)
    assert decoder.mean(z).shape == (5, 6, dim)


def test_a_flat_example_is_read_in_row_major_height_width_channel_order():
    h, w, c = 3, 4, 2
    flat = torch.arange(h * w * c, dtype=torch.float32)[None]
    maps = to_maps(flat, [h, w, c])
    for row, col, channel in [(0, 0, 0), (1, 2, 1), (2, 3, 0)]:
        assert maps[0, channel, row, col] == flat[0, (row * w + col) * c + channel]


class Fixed(torch.nn.Module):
    """Output maps given in advance, whatever the input."""

    def __init__(self, maps: torch.Tensor):
        super().__init__()
        self.maps = maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maps.expand(len(x), -1, -1, -1)


def test_the_decoders_numbers_land_on_the_datas_pixel_order():
    """Each output map's value at (h, w) is tagged with its channel, pixel and likelihood number: the
    Distribution's parameter for flat pixel (h*W + w)*C + c must carry the same tag."""
    h, w, c = 3, 4, 2
    decoder = ConvDecoder(2, h * w * c, [h, w, c], channels=[4], likelihood="discretized_logistic", num_levels=256)
    tags = torch.zeros(1, c * 2, h, w)
    for channel in range(c):
        for number in range(2):
            for row in range(h):
                for col in range(w):
                    tags[0, channel * 2 + number, row, col] = 1000 * number + 100 * channel + 10 * row + col
    decoder.convs = Fixed(tags)
    dist = decoder(torch.zeros(1, 2)).base_dist
    for row, col, channel in [(0, 0, 0), (1, 2, 1), (2, 3, 1)]:
        pixel = (row * w + col) * c + channel
        assert dist.log_scale[0, pixel] == 1000 + 100 * channel + 10 * row + col  # the second number
        expected_loc = 255 * torch.sigmoid(torch.tensor(100.0 * channel + 10 * row + col))
        assert torch.isclose(dist.loc[0, pixel], expected_loc)


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (("encoder=conv", "dataset.image_shape=[1,64]"),
         "encoder.image_shape=[1, 64] is not allowed: vaelab.nets.ConvEncoder needs images, at least 2x2 pixels"),
        (("decoder=conv", "decoder.image_shape=null"),
         "decoder.image_shape=null is not allowed: vaelab.nets.ConvDecoder needs images"),
        (("encoder=conv", "encoder.kernels=[3,3]"),
         "encoder.kernels=[3, 3] is not allowed: must have one kernel size per entry of encoder.channels (5)"),
        (("decoder=conv", "decoder.channels=[]"), "decoder.channels=[] is not allowed: must be a list of positive"),
    ],
)  # fmt: skip
def test_a_conv_network_without_an_image_shape_or_with_mismatched_lists_is_one_line(
    make_cfg, tmp_path, overrides, says
):
    with pytest.raises(ConfigError) as error:
        vaelab.run(make_cfg(*overrides))
    assert str(error.value).startswith(says)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # ten short runs
@pytest.mark.parametrize("prior", PRIORS)
def test_every_prior_trains_with_the_convolutional_networks(tmp_path, prior):
    """Small networks, two steps; the pseudo-input priors pass images through the conv encoder."""
    cfg = compose_config(
        "encoder=conv",
        "decoder=conv",
        f"prior={prior}",
        "encoder.channels=[8,8]",
        "encoder.kernels=[3,3]",
        "encoder.strides=[1,2]",
        "decoder.channels=[8]",
        "trainer=fast",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "figures.enabled=false",
        *CHEAP_EVAL,
        f"run_dir={tmp_path / 'run'}",
    )
    metrics = vaelab.run(cfg)
    assert math.isfinite(metrics["test/nll"]) and metrics["test/nll"] <= -metrics["test/elbo"] + 1e-6
