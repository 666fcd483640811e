"""The refits a run asks for with `posthoc=`: checked by name before any training."""

from __future__ import annotations

import pytest
from helpers import compose_config

from vaelab.errors import ConfigError
from vaelab.posthoc.jobs import requested


def test_posthoc_names_are_checked_before_training():
    assert requested(compose_config("posthoc=[mog,flow]")) == ["mog", "flow"]
    assert requested(compose_config()) == []
    with pytest.raises(
        ConfigError,
        match="posthoc=foo is not allowed: choose prior options from energy, energy_ncp, exemplar, flow, gtm",
    ):
        requested(compose_config("posthoc=[mog,foo]"))
