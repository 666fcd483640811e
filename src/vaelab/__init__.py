"""vaelab: train the same VAE with any prior and compare the priors properly.

`vaelab.VAE`, `vaelab.build` and `vaelab.run` are imported on first use (PEP 562), so that
`import vaelab` and `vaelab-train --cfg job` do not pay for torch and Lightning.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vaelab.model import VAE
    from vaelab.training.fit import build, run

__all__ = ["VAE", "build", "run"]
_WHERE = {"VAE": "vaelab.model", "build": "vaelab.training.fit", "run": "vaelab.training.fit"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'vaelab' has no attribute {name!r}")
