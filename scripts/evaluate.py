"""Evaluate a saved run or checkpoint on its test set, as at the end of training.

    python scripts/evaluate.py outputs/runs/<run>                         # the run's best checkpoint
    python scripts/evaluate.py outputs/runs/<run> eval.num_samples=5000   # overrides, Hydra style
    python scripts/evaluate.py outputs/runs/<run>/checkpoints/last.ckpt   # any checkpoint of a run
    python scripts/evaluate.py <run>/checkpoints/best-042.ckpt --json nll.json  # results to a file too

The config is the run's `config.yaml` with the overrides merged in. With the same settings and
seed the numbers in `metrics.json` are reproduced. For the run's best checkpoint (a run directory,
or the checkpoint `metrics.json` names) the results go to `metrics.json` and the run's experiment trackers (`logger`, TensorBoard by default);
for any other checkpoint they are only printed. `--json FILE` writes the results (and the
checkpoint's path) to FILE as well, for any checkpoint: e.g. a run stopped before its own test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import TensorBoardLogger

from vaelab import tracking
from vaelab.config import ConfigError, check_config
from vaelab.evaluate import evaluate_test_set, format_table, log_evaluation
from vaelab.model import VAE


class EvaluationError(RuntimeError):
    """A run directory, config or checkpoint is missing or unusable."""


def recorded_best(run_dir: Path) -> Path | None:
    """The checkpoint the run tested (`best_checkpoint` in its metrics.json), if it records one."""
    metrics_path = run_dir / "metrics.json"
    try:
        recorded = json.loads(metrics_path.read_text()).get("best_checkpoint") if metrics_path.is_file() else None
    except (ValueError, AttributeError) as error:
        raise EvaluationError(f"{metrics_path}: not a readable metrics file ({str(error).splitlines()[0]})") from None
    return run_dir / recorded if recorded else None


def load_model(ckpt: Path) -> VAE:
    """The VAE saved in `ckpt`; a truncated or foreign file is an EvaluationError naming it."""
    try:
        return VAE.load_from_checkpoint(ckpt, map_location="cpu")
    except Exception as error:  # noqa: BLE001 - torch and Lightning raise many kinds for a bad file
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise EvaluationError(f"{ckpt}: not a readable vaelab checkpoint (truncated or corrupt? {reason})") from None


def locate(path: Path) -> tuple[Path, Path]:
    """(run directory, checkpoint) for a run directory or a checkpoint file inside one."""
    if not path.exists():
        raise EvaluationError(f"{path} does not exist")
    if path.is_dir():
        run_dir, ckpt = path, recorded_best(path)
        if ckpt is None:
            raise EvaluationError(f"{path / 'metrics.json'} is missing or records no best_checkpoint; pass a .ckpt path instead")
    else:
        # checkpoints live in <run_dir>/checkpoints/; accept one next to config.yaml too
        run_dir = next((d for d in (path.parent, path.parent.parent) if (d / "config.yaml").is_file()), path.parent.parent)
        ckpt = path
    if not (run_dir / "config.yaml").is_file():
        raise EvaluationError(f"{run_dir / 'config.yaml'} not found: the run's config is needed to rebuild the test data")
    if not ckpt.is_file():
        raise EvaluationError(f"checkpoint {ckpt} not found")
    return run_dir, ckpt


def load_config(run_dir: Path, overrides: list[str]) -> DictConfig:
    """The run's config.yaml with `key=value` overrides; a key it lacks must be added as `+key=value`."""
    try:
        cfg = OmegaConf.load(run_dir / "config.yaml")
    except Exception as error:  # noqa: BLE001 - a YAML error of any kind
        raise EvaluationError(f"{run_dir / 'config.yaml'}: not a readable config ({str(error).splitlines()[0]})") from None
    for override in overrides:
        key, sep, _ = override.partition("=")
        if not sep:
            raise EvaluationError(f"override {override!r} is not of the form key=value")
        if not key.startswith("+") and OmegaConf.select(cfg, key, default=KeyError) is KeyError:
            raise EvaluationError(f"override {override!r}: {key} is not in {run_dir / 'config.yaml'} (use +{key}=... to add it)")
    cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([o.removeprefix("+") for o in overrides]))
    try:  # the same checks as for training, except the GPUs (a run trained on one evaluates anywhere)
        check_config(cfg, machine=False)
    except ConfigError as error:
        raise EvaluationError(str(error)) from None
    return cfg


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, help="a run directory or a .ckpt file inside one")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. eval.num_samples=5000")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    try:
        run_dir, ckpt = locate(args.path)
        cfg = load_config(run_dir, args.overrides)
        best = recorded_best(run_dir)
        model = load_model(ckpt)
        datamodule = instantiate(cfg.dataset.datamodule)
        datamodule.setup("test")  # a malformed data file is one line too (a ConfigError)
    except (EvaluationError, ConfigError) as error:
        parser.exit(2, f"evaluate.py: error: {error}\n")
    is_best = best is not None and ckpt.resolve() == best.resolve()

    results = evaluate_test_set(model, datamodule, cfg, run_dir if is_best else None)  # the run's figure: best only
    print(f"{ckpt}:")
    print(format_table(results))
    if args.json is not None:
        args.json.write_text(json.dumps({"checkpoint": str(ckpt), **results}, indent=2) + "\n")
        print(f"wrote {args.json}")
    if is_best:
        metrics_path = run_dir / "metrics.json"
        metrics = {**json.loads(metrics_path.read_text()), **results}
        # The run's trackers (`logger` in its config); runs from before the `logger` group had TensorBoard.
        trackers = tracking.build_loggers(cfg) if "logger" in cfg else [
            TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False)]
        log_evaluation(trackers, cfg, metrics, step=metrics.get("epochs") or 0, run_dir=run_dir)
        metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
        print(f"updated {metrics_path}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
