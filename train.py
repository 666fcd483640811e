"""Train one VAE: `python train.py prior=vamp latent_dim=2`; sweep: `python train.py -m prior=...`.

Everything lives in the installed package; this file only hands Hydra's config to it. It imports
nothing heavy (torch, Lightning): `python train.py --cfg job` prints the config in a second.
"""

import sys

import hydra
from omegaconf import DictConfig

import vaelab
from vaelab import sweep
from vaelab.errors import ConfigError, NonFiniteLossError


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    if sweep.in_multirun():  # a failed job is recorded in its directory; the other jobs go on
        return sweep.run_job(cfg)
    try:
        metrics = vaelab.run(cfg)
    except (ConfigError, NonFiniteLossError) as error:
        sys.exit(f"error: {error}")
    return metrics.get("test/loss", float("nan"))


if __name__ == "__main__":
    main()
