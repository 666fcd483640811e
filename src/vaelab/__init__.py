"""vaelab: train the same VAE with any of six priors and compare them properly.

`vaelab.VAE`, `vaelab.build` and `vaelab.run` are imported on first use (PEP 562), so that
`import vaelab` and `python train.py --cfg job` do not pay for torch and Lightning.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vaelab.model import VAE
    from vaelab.train import build, run

__all__ = ["VAE", "build", "run"]
_WHERE = {"VAE": "vaelab.model", "build": "vaelab.train", "run": "vaelab.train"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'vaelab' has no attribute {name!r}")
