"""Train one VAE: `python train.py prior=vamp latent_dim=2`; sweep: `python train.py -m prior=...`.

Everything lives in the installed package; this file only hands Hydra's config to it.
"""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import vaelab
from vaelab import sweep
from vaelab.config import ConfigError, check_overrides, remove_unused_run_dir
from vaelab.model import NonFiniteLossError


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    if sweep.in_multirun():  # a failed job is recorded in its directory; the other jobs go on
        return sweep.run_job(cfg)
    try:
        metrics = vaelab.run(cfg)
    except (ConfigError, NonFiniteLossError) as error:
        if isinstance(error, ConfigError):  # rejected before any work: leave no run directory behind
            remove_unused_run_dir(HydraConfig.get().runtime.output_dir, f"{HydraConfig.get().job.name}.log")
        sys.exit(f"error: {error}")
    return metrics.get("test/loss", float("nan"))


if __name__ == "__main__":
    if not any(arg.startswith("-") for arg in sys.argv[1:]):  # a single run; flags (-m, --cfg ...) go to Hydra
        try:  # a mistyped key or option in one line, as for a bad value (Hydra's report takes several)
            check_overrides(sys.argv[1:], Path(__file__).parent / "conf")
        except ConfigError as error:
            sys.exit(f"error: {error}")
    main()
