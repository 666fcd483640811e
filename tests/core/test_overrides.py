"""Command-line overrides, checked before Hydra runs the task: what Hydra rejects while composing is
one line naming the override; `posthoc=a,b` is a list, not a sweep."""

from __future__ import annotations

import pytest
from helpers import CONF

from vaelab.errors import ConfigError
from vaelab.overrides import check_overrides, posthoc_argv

COMPOSE_ERRORS = [
    ("prior.num_compnents=3", "prior.num_compnents=3 is not allowed: prior has no key num_compnents (its keys: "
     "latent_dim); to add a new key, write +prior.num_compnents=3"),
    ("prior=mog prior.num_compnents=3", "prior has no key num_compnents (its keys: init_scale, latent_dim, num_components)"),
    ("trainer.min_epochs=3", "trainer.min_epochs=3 is not allowed: trainer has no key min_epochs"),
    ("foo=1", "foo=1 is not allowed: the config has no key foo"),
    ("prior=foo", "prior=foo is not allowed: choose one of energy, energy_ncp, exemplar, flow, gtm, gtm_vamp, lars, latent_vae, maf, mog, nsf, standard, vamp, vamp_data"),
    ("encoder=transformer", "encoder=transformer is not allowed: choose one of conv, gated_mlp, mlp"),
    ("latent_dim=[1,", "latent_dim=[1, is not allowed: not a valid override"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "message"), COMPOSE_ERRORS, ids=[c[0] for c in COMPOSE_ERRORS])
def test_composition_errors_are_one_line(overrides, message):
    with pytest.raises(ConfigError) as error:
        check_overrides(overrides.split(), CONF)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_good_overrides_compose(tmp_path):
    check_overrides(
        ["prior=vamp", "prior.num_components=3", f"hydra.run.dir={tmp_path}", "+trainer.min_epochs=1"], CONF
    )


def test_a_comma_list_of_posthoc_priors_is_one_list_not_a_sweep():
    assert posthoc_argv(["-m", "seed=0,1", "posthoc=mog,flow", "posthoc=[a,b]"]) == [
        "-m",
        "seed=0,1",
        "posthoc=[mog,flow]",
        "posthoc=[a,b]",
    ]
