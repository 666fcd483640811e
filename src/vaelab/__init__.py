"""vaelab: train the same VAE with any prior and compare the priors properly.

`vaelab.VAE`, `vaelab.build` and `vaelab.run` are imported on first use (PEP 562), so that
`import vaelab` and `vaelab-train --cfg job` do not pay for torch and Lightning.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

if TYPE_CHECKING:
    from vaelab.model import VAE
    from vaelab.training.fit import build, run

__all__ = ["VAE", "build", "run"]
_WHERE = {"VAE": "vaelab.model", "build": "vaelab.training.fit", "run": "vaelab.training.fit"}


def _choose(condition: Any, if_true: Any, if_false: Any) -> Any:
    """`${vaelab.if:${dataset.binarize},1,255}`: one value or the other, as the condition is true
    or false. A config picks its dependent values with it, so that one key switches them all."""
    return if_true if condition is True else if_false


OmegaConf.register_new_resolver("vaelab.if", _choose, replace=True)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'vaelab' has no attribute {name!r}")
