"""vaelab: train the same VAE with any of six priors and compare them properly."""

from vaelab.model import VAE
from vaelab.train import build, run

__all__ = ["VAE", "build", "run"]
