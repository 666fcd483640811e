"""Train one VAE: `python train.py prior=vamp latent_dim=2`; sweep: `python train.py -m prior=...`;
continue an interrupted run: `python train.py resume=<run directory>`; refit priors after training
with the encoder and decoder frozen: `python train.py posthoc=mog,flow` (vaelab.posthoc).

Everything lives in the installed package; this file only hands Hydra's config to it. It imports
nothing heavy (torch, Lightning): `python train.py --cfg job` prints the config in a second.
"""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from vaelab.cli import posthoc_argv
from vaelab.resume import ResumeError, resume_argv


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    import vaelab
    from vaelab import sweep
    from vaelab.cli import remove_unused_run_dir
    from vaelab.errors import ConfigError, NonFiniteLossError
    from vaelab.interrupt import TrainingInterrupted

    if sweep.in_multirun():  # a failed job is recorded in its directory; the other jobs go on
        return sweep.run_job(cfg)
    from vaelab import posthoc

    try:
        posthoc.requested(cfg)  # posthoc=[mog, ...]: the names, checked before training
        metrics = vaelab.run(cfg)
        failed = posthoc.refit_job(cfg) if cfg.get("posthoc") else []
    except (ConfigError, NonFiniteLossError, ResumeError) as error:
        if isinstance(error, ConfigError):  # rejected before any work: leave no run directory behind
            remove_unused_run_dir(HydraConfig.get().runtime.output_dir, f"{HydraConfig.get().job.name}.log")
        sys.exit(f"error: {error}")
    except TrainingInterrupted as error:
        sys.exit(error.exit_status)
    if failed:
        sys.exit(f"error: the post-hoc fit of {', '.join(failed)} failed (see {cfg.run_dir}/posthoc/*/failed.json)")
    return metrics.get("test/loss", float("nan"))


if __name__ == "__main__":
    try:
        sys.argv[1:] = resume_argv(posthoc_argv(sys.argv[1:]))  # resume=<run>: the run's own command line
    except ResumeError as error:
        sys.exit(f"error: {error}")
    if not any(arg.startswith("-") for arg in sys.argv[1:]):  # a single run; flags (-m, --cfg ...) go to Hydra
        from vaelab.cli import check_overrides
        from vaelab.errors import ConfigError

        try:  # a mistyped key or option in one line, as for a bad value (Hydra's report takes several)
            check_overrides(sys.argv[1:], Path(__file__).parent / "conf")
        except ConfigError as error:
            sys.exit(f"error: {error}")
    main()
