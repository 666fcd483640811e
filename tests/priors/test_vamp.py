"""The VampPrior's pseudo-inputs: copied from training inputs, learned even from binary images,
kept fixed for vamp_data, and always within the data's range."""

from __future__ import annotations

import pytest
import torch
from helpers.priors import INPUT_DIM, INPUT_MAX, LATENT_DIM, blobs, build, images_of, make_prior

from vaelab.nets import MLPEncoder
from vaelab.priors import VampPrior

pytestmark = pytest.mark.usefixtures("one_thread")


def test_vamp_init_from_data_copies_distinct_rows():
    prior = make_prior("vamp")
    torch.manual_seed(7)
    x = torch.randint(0, 17, (100, INPUT_DIM)).float()
    prior.init_from_data(x)
    u = prior.pseudo_inputs()
    # (K, N): u_k is row n of x, its pixels at the bounds 0 and 16 moved 1% of the range inside
    matches = (u[:, None, :] == x[None, :, :].clamp(0.16, 15.84)).all(-1)
    assert matches.any(1).all()
    assert len(set(matches.float().argmax(1).tolist())) == u.shape[0]  # no row copied twice


def test_vamp_pseudo_inputs_copied_from_binary_images_are_learned():
    """The hard-tanh passes no gradient at its bounds, where every pixel of a binary image is."""
    torch.manual_seed(0)
    x = torch.randint(0, 2, (100, INPUT_DIM)).float()
    learned = VampPrior(LATENT_DIM, INPUT_DIM, init="data")
    learned.init_from_data(x)
    encoder = MLPEncoder(INPUT_DIM, LATENT_DIM, hidden=32, input_scale=1.0)
    learned(encoder).log_prob(blobs(LATENT_DIM).float()).sum().backward()
    assert (learned.u.grad != 0).all()  # every pixel of every pseudo-input moves
    assert ((learned.u - x[:, None]).abs().amax(-1).amin(0) <= 0.01 + 1e-7).all()  # each near one image
    fixed = VampPrior(LATENT_DIM, INPUT_DIM, init="data", learnable_inputs=False)
    fixed.init_from_data(x)
    assert set(fixed.pseudo_inputs().unique().tolist()) == {0.0, 1.0}  # vamp_data: the images as they are


def test_vamp_init_from_data_needs_at_least_k_rows():
    prior = make_prior("vamp", num_components=16)
    with pytest.raises(ValueError, match="at least 16 training inputs, got 15"):
        prior.init_from_data(torch.zeros(15, INPUT_DIM))


def test_vamp_data_pseudo_inputs_are_training_inputs_that_training_leaves_alone():
    prior, _ = build("vamp_data", "trained")
    x = images_of(blobs(LATENT_DIM)).float().double()  # copied into the float32 prior before .double()
    u = prior.pseudo_inputs()
    assert all((x == row).all(dim=1).any() for row in u)  # still K of the training inputs
    assert u.std(0).mean() > 0.1  # and different ones


@pytest.mark.parametrize("name", ["vamp", "gtm_vamp"])
def test_pseudo_inputs_stay_within_data_range(name):
    prior, _ = build(name, "trained")
    assert prior.pseudo_inputs().min() >= 0.0 and prior.pseudo_inputs().max() <= INPUT_MAX
    torch.manual_seed(8)
    with torch.no_grad():  # wild parameters: the map saturates at the bounds, never beyond
        for param in prior.parameters():
            param.copy_(1000.0 * torch.randn_like(param))
    u = prior.pseudo_inputs()
    assert u.min() == 0.0 and u.max() == INPUT_MAX
