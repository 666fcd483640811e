"""The parts of a post-hoc fit (`vaelab.posthoc.fit`) around the training: the trained run it starts
from, the config of the refit, the before/after numbers, and how the refit is labelled and logged.

The refit's config is the run's own `config.yaml` (what was trained, resolved) with the `prior`
node replaced by the newly composed option (so `prior=mog` under `experiment=vampprior_paper` gets
that experiment's K = 500) and only keys that do not touch the frozen model overridable: the
encoder, decoder, data and latent space are the run's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vaelab.errors import ConfigError, PosthocError, RunDirError
from vaelab.evaluation.runner import evaluate_test_set
from vaelab.overrides import check_overrides, key_of, matches
from vaelab.rundir import RunDir, find_checkpoint, read_json, read_yaml
from vaelab.training.trackers import option_name

__all__ = ["before_after", "labelled", "load_source", "log_to", "posthoc_config", "source_prior"]

# Keys a post-hoc fit may override besides prior.*: its training, evaluation and pictures.
ALLOWED = ("trainer.", "early_stopping.", "optimizer.", "seed", "eval.", "figures.", "log.", "checkpoint.")


def load_source(run: Path) -> tuple[Path, Path]:
    """(run directory, its best checkpoint): the one `metrics.json` names, else the newest
    `checkpoints/best-*.ckpt` (a run stopped before its test)."""
    if not Path(run).is_dir():
        raise PosthocError(f"{run}: no such run directory")
    try:
        source, checkpoint = find_checkpoint(run, want="best")
    except RunDirError as error:
        raise PosthocError(str(error)) from None
    return source.path, checkpoint


def source_prior(run_dir: Path) -> str:
    """The prior option the run was trained with: Hydra's record, else its class's option name."""
    hydra = read_yaml(RunDir(run_dir).hydra_record) or {}
    choice = (((hydra.get("hydra") or {}).get("runtime") or {}).get("choices") or {}).get("prior")
    saved = read_yaml(RunDir(run_dir).config) or {}
    return choice or option_name(str((saved.get("prior") or {}).get("_target_", "?")), "Prior")


def split_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """(prior.* overrides, the others); a key that would change the frozen model is refused."""
    prior, other = [], []
    for override in overrides:
        key = key_of(override)
        if "=" not in override:
            raise PosthocError(f"{override} is not allowed: an override is key=value")
        if key.startswith("prior."):
            prior.append(override)
        elif matches(key, ALLOWED):
            other.append(override)
        else:
            allowed = ", ".join(a + "*" if a.endswith(".") else a for a in ALLOWED)
            raise PosthocError(
                f"{override} is not allowed in a post-hoc fit: the encoder, decoder, data and latent space "
                f"are the run's; allowed: prior=, prior.*, {allowed}"
            )
    return prior, other


def compose_prior(run_dir: Path, prior: str, overrides: list[str], config_dir: Path) -> dict:
    """The `prior` node (interpolations kept) of `prior=<prior>` with `overrides`, composed as the
    run was (its `experiment=`, from `.hydra/overrides.yaml`). Inside a Hydra app (a training run
    with `posthoc=`) through the app's own search path, else from `config_dir`, with one-line errors
    for an unknown option or key (`vaelab.overrides.check_overrides`)."""
    saved = read_yaml(RunDir(run_dir).hydra_overrides) or []
    experiment = [o for o in saved if key_of(o) == "experiment"]
    chosen = [*experiment, f"prior={prior}", *overrides]
    if GlobalHydra.instance().is_initialized():
        try:
            return OmegaConf.to_container(compose("train", overrides=chosen).prior, resolve=False)
        except Exception as failure:  # noqa: BLE001 - Hydra's composition errors, as one line
            raise PosthocError(f"prior={prior} {' '.join(overrides)}: {str(failure).splitlines()[0]}") from None

    try:
        check_overrides(chosen, config_dir)
    except ConfigError as failure:
        raise PosthocError(str(failure)) from None
    with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.3"):
        return OmegaConf.to_container(compose("train", overrides=chosen).prior, resolve=False)


def _moved(node: Any, old: str, new: str) -> Any:
    """`node` with the run directory `old` replaced by `new` in every string (the trackers' folders)."""
    if isinstance(node, dict):
        return {key: _moved(value, old, new) for key, value in node.items()}
    if isinstance(node, list):
        return [_moved(value, old, new) for value in node]
    return node.replace(old, new) if isinstance(node, str) and old else node


def posthoc_config(
    run_dir: Path, prior: str, overrides: list[str], out_dir: Path, config_dir: Path
) -> tuple[DictConfig, list[str]]:
    """The refit's config (not yet checked) and its prior overrides: the run's config.yaml with the
    new prior, the run directory `out_dir`, no KL warm-up (with the encoder and decoder fixed the
    KL weight would only scale the prior's gradient) and no further post-hoc fits. For a model=hvae
    run the new prior is p(z2), the top level's; p(z1|z2) stays the run's, frozen with the encoder
    and decoder (`vaelab.posthoc.fit.PosthocVAE`)."""
    prior_overrides, other = split_overrides(overrides)
    node = compose_prior(run_dir, prior, prior_overrides, config_dir)
    cfg = OmegaConf.load(RunDir(run_dir).config)
    old = str(cfg.get("run_dir") or "")
    cfg.prior = node
    if cfg.get("logger"):  # resolved in config.yaml: the trackers' folders are the run's, moved here
        cfg.logger = _moved(OmegaConf.to_container(cfg.logger), old, str(out_dir))
    cfg.run_dir, cfg.kl_warmup_epochs, cfg.resume, cfg.posthoc = str(out_dir), 0, None, None
    if "schedule" in cfg:  # only the prior trains: one optimizer, whatever the run's schedule was
        cfg.schedule = {"name": "joint"}
    for override in other:
        key = override.split("=", 1)[0]
        if not key.startswith("+") and OmegaConf.select(cfg, key, default=KeyError) is KeyError:
            raise PosthocError(
                f"{override} is not allowed: {key} is not in {run_dir / 'config.yaml'} (use +{key}=... to add it)"
            )
    cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([o.lstrip("+") for o in other]))
    if "ddp" in str(cfg.trainer.get("strategy", "")):  # a prior of a few thousand parameters: one device
        cfg.trainer.strategy, cfg.trainer.devices = "auto", 1
    return cfg, prior_overrides


def before_after(run_dir: Path, cfg: DictConfig, source, after: dict[str, Any]) -> dict[str, Any]:
    """The joint run's test metrics ("before") and the refit's ("after"), every numeric `test/*` key.
    "before" is the run's metrics.json when it was evaluated with the same `eval` settings and seed
    (the encoder is the same, so the same z ~ q(z|x) are drawn: the reconstruction and entropy terms
    agree exactly); otherwise the joint model is evaluated again with the refit's settings."""

    saved_cfg = read_yaml(RunDir(run_dir).config) or {}
    saved = read_json(RunDir(run_dir).metrics) or {}
    same = saved_cfg.get("eval") == OmegaConf.to_container(cfg.eval, resolve=True) and saved_cfg.get("seed") == cfg.seed
    if "test/nll" in saved and same:
        before, how = saved, "the run's metrics.json"
    else:
        before = evaluate_test_set(source, instantiate(cfg.dataset.datamodule), cfg)
        how = "the joint model evaluated again with the refit's eval settings and seed"
    numbers = lambda m: {k: v for k, v in m.items() if k.startswith("test/") and isinstance(v, (int, float))}
    return {"before": numbers(before), "after": numbers(after), "before_from": how}


@contextmanager
def labelled(prior: str, overrides: list[str]) -> Iterator[None]:
    """The refit is its own run to the trackers and the summary line (`vaelab.training.trackers.run_hparams`
    reads Hydra's choices): `prior=<prior>`, not the joint run's prior of the Hydra job around it."""
    instance = HydraConfig.instance()
    saved = instance.cfg
    choices = dict(saved.hydra.runtime.choices) if saved is not None else {}
    hydra = {"runtime": {"choices": {**choices, "prior": prior}}, "overrides": {"task": [f"prior={prior}", *overrides]}}
    instance.cfg = OmegaConf.create({"hydra": hydra})
    try:
        yield
    finally:
        instance.cfg = saved


@contextmanager
def log_to(path: Path) -> Iterator[None]:
    """The refit's log lines also go to its own `train.log` (as Hydra's job log does for a run)."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(levelname)s] %(message)s", "%H:%M:%S"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(min(level, logging.INFO) if level else logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()
