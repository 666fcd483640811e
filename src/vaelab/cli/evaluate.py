"""`vaelab-evaluate`: evaluate a saved run or checkpoint on its test set, as at the end of training.

    vaelab-evaluate outputs/runs/<run>                          # the run's best checkpoint
    vaelab-evaluate outputs/runs/<run> eval.num_samples=5000    # overrides, Hydra style
    vaelab-evaluate outputs/runs/<run>/checkpoints/last.ckpt    # any checkpoint of a run
    vaelab-evaluate <run>/checkpoints/best-042.ckpt --json nll.json   # the results to a file too

The config is the run's `config.yaml` with the overrides merged in; with the same settings and
seed the numbers in `metrics.json` are reproduced. The checkpoint fixes the model, prior included:
of the prior's keys only those that set how its density is estimated or sampled apply
(`prior.eval_samples`, `prior.resample_from`, where the prior has them), e.g.

    vaelab-evaluate <run> prior.eval_samples=200   # a latent_vae prior's log p(z) over 200 samples of q(u|z)

For the run's best checkpoint (a run directory, or the checkpoint `metrics.json` names) the results
go to `metrics.json` and the run's experiment trackers; for any other checkpoint they are printed,
and written to `--json FILE` if given. A bad
input is one line (exit status 2) and writes nothing. torch is imported once the arguments are
parsed, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from vaelab.errors import ConfigError, RunDirError, VaelabError
from vaelab.overrides import key_of, merge_overrides
from vaelab.rundir import RunDir, find_checkpoint, read_json

__all__ = ["main"]

ESTIMATOR_KEYS = ("eval_samples", "resample_from")  # a prior's settings that a checkpoint does not fix


def load_config(run_dir: Path, overrides: list[str]) -> DictConfig:
    """The run's config.yaml with `key=value` overrides, checked as for training (but the GPUs:
    a run trained on one evaluates anywhere)."""
    from vaelab.config import check_config  # imports torch: after the arguments are parsed

    run = RunDir(run_dir)
    try:
        cfg = OmegaConf.load(run.config)
    except Exception as error:  # noqa: BLE001 - a YAML error of any kind
        raise RunDirError(f"{run.config}: not a readable config ({str(error).splitlines()[0]})") from None
    cfg = merge_overrides(cfg, overrides, run.config)
    check_config(cfg, machine=False)
    return cfg


def check_prior_overrides(overrides: list[str]) -> list[str]:
    """The prior keys among `overrides` (without "prior."): only ESTIMATOR_KEYS, else a ConfigError."""
    names = []
    for override in overrides:
        key = key_of(override).removeprefix("+")
        if key == "prior" or key.startswith("prior."):
            name = key.removeprefix("prior.")
            if name not in ESTIMATOR_KEYS:
                allowed = ", ".join(f"prior.{k}" for k in ESTIMATOR_KEYS)
                raise ConfigError(
                    f"{override} is not allowed: the checkpoint fixes the prior; at evaluation only {allowed} "
                    "(how its density is estimated or sampled) can change"
                )
            names.append(name)
    return names


def load_model(ckpt: Path):
    """The VAE saved in `ckpt`; a truncated or foreign file is a RunDirError naming it."""
    from vaelab.model import VAE  # torch: once the arguments are checked

    try:
        return VAE.load_from_checkpoint(ckpt, map_location="cpu")
    except Exception as error:  # noqa: BLE001 - torch and Lightning raise many kinds for a bad file
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RunDirError(f"{ckpt}: not a readable vaelab checkpoint (truncated or corrupt? {reason})") from None


def run_trackers(cfg: DictConfig, run: RunDir) -> list:
    """The run's experiment trackers (`logger` in its config); TensorBoard for a config without one."""
    from pytorch_lightning.loggers import TensorBoardLogger  # Lightning: once the arguments are checked

    from vaelab.training.trackers import build_loggers

    if "logger" in cfg:
        return build_loggers(cfg)
    return [TensorBoardLogger(save_dir=str(run.path), name="tensorboard", version="", default_hp_metric=False)]


def evaluate(path: Path, overrides: list[str], json_file: Path | None = None) -> dict:
    """Evaluate the checkpoint at `path` (or a run's best), print the table, write the files."""
    run, ckpt = find_checkpoint(path, want="best")  # before torch is imported: a bad path answers at once
    # torch and Lightning: once the path is known to be a run
    from hydra.utils import instantiate

    from vaelab.evaluation.runner import evaluate_test_set
    from vaelab.evaluation.table import format_table
    from vaelab.files import atomic_write_json
    from vaelab.training.trackers import log_evaluation

    prior_keys = check_prior_overrides(overrides)
    cfg = load_config(run.path, overrides)
    best = run.best_checkpoint()
    model = load_model(ckpt)
    for name in prior_keys:
        if not hasattr(model.prior, name):
            raise ConfigError(
                f"prior.{name} is not allowed: the run's prior ({type(model.prior).__name__}) has no such setting"
            )
        setattr(model.prior, name, cfg.prior[name])
    datamodule = instantiate(cfg.dataset.datamodule)
    datamodule.setup("test")  # a malformed data file is one line too (a DataFormatError)
    is_best = best is not None and ckpt == best.resolve()

    results = evaluate_test_set(model, datamodule, cfg, run.path if is_best else None)  # the run's figure: best only
    print(f"{ckpt}:")
    print(format_table(results))
    if json_file is not None:
        atomic_write_json(json_file, {"checkpoint": str(ckpt), **results})
        print(f"wrote {json_file}")
    if is_best:
        metrics = {**(read_json(run.metrics) or {}), **results}
        log_evaluation(run_trackers(cfg, run), cfg, metrics, step=metrics.get("epochs") or 0, run_dir=run.path)
        atomic_write_json(run.metrics, metrics)
        print(f"updated {run.metrics}")
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="vaelab-evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path", type=Path, help="a run directory or a .ckpt file inside one")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. eval.num_samples=5000")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    try:
        return evaluate(args.path, args.overrides, args.json)
    except VaelabError as error:
        parser.exit(2, f"vaelab-evaluate: error: {error}\n")


def entry() -> None:
    """The installed command (its exit status is 0, not the results `main` returns)."""
    main()


if __name__ == "__main__":
    entry()
