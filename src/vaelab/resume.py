"""`python train.py resume=<run directory | checkpoint>`: continue a run where it stopped.

The run goes on in its own directory with the config saved there: before Hydra starts,
`resume_argv` turns the command line into the run's original overrides plus
`hydra.run.dir=<run>` and `resume=<checkpoint>`. Overrides that would change the model, the data
or the training are refused (a resume is not a new run); a longer budget and the settings of
what is drawn and evaluated may change (`RESUMABLE_KEYS`).

This module is imported before Hydra and must stay light: no torch, no Lightning.
"""

from __future__ import annotations

from pathlib import Path

import yaml

CONFIG_FILE = "config.yaml"
INTERRUPTED_FILE = "interrupted.json"  # written when a signal stopped training (vaelab.interrupt)
LAST = Path("checkpoints") / "last.ckpt"
# Keys a resumed run may change: the budget, the device, and what is drawn, logged and evaluated.
RESUMABLE_KEYS = ("trainer.max_epochs", "trainer.max_time", "trainer.accelerator", "trainer.devices",
                  "trainer.enable_progress_bar", "checkpoint.", "eval.", "figures.", "log.")  # fmt: skip


class ResumeError(ValueError):
    """`resume=` names no resumable run, or an override would change the run."""


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _is_resumable(key: str) -> bool:
    return any(key == allowed or (allowed.endswith(".") and key.startswith(allowed)) for allowed in RESUMABLE_KEYS)


def locate(target: str) -> tuple[Path, Path]:
    """(run directory, checkpoint) for `resume=<target>`: a run directory (its `last.ckpt`) or a
    checkpoint file inside a run's `checkpoints/`."""
    path = Path(target).expanduser().resolve()
    if path.is_file():
        run_dir, ckpt = path.parent.parent, path
        if path.parent.name != "checkpoints":
            raise ResumeError(f"resume={target}: a checkpoint must sit in a run's checkpoints/ folder")
    elif path.is_dir():
        run_dir, ckpt = path, path / LAST
    else:
        raise ResumeError(f"resume={target}: no such run directory or checkpoint")
    if not (run_dir / CONFIG_FILE).is_file() or not (run_dir / ".hydra" / "overrides.yaml").is_file():
        raise ResumeError(f"resume={target}: {run_dir} holds no vaelab run (no config.yaml and .hydra/overrides.yaml)")
    if not ckpt.is_file():
        raise ResumeError(f"resume={target}: the run has no checkpoint to resume from ({LAST} is missing)")
    return run_dir, ckpt


def resume_argv(argv: list[str]) -> list[str]:
    """The command line Hydra sees: unchanged without `resume=`, else the run's own overrides,
    the allowed new ones, `resume=<checkpoint>` and `hydra.run.dir=<run directory>`."""
    targets = [arg for arg in argv if _key(arg) == "resume" and "=" in arg]
    if not targets or targets[-1].split("=", 1)[1] in ("", "null"):
        return argv
    if any(arg in ("-m", "--multirun") for arg in argv):
        raise ResumeError("resume= continues one run: to resume a sweep, run the same sweep command again "
                          "with the same hydra.sweep.dir")  # fmt: skip
    run_dir, ckpt = locate(targets[-1].split("=", 1)[1])
    flags = [arg for arg in argv if arg.startswith("-")]
    overrides = [arg for arg in argv if not arg.startswith("-") and _key(arg) != "resume"]
    for override in overrides:
        if not _is_resumable(_key(override)):
            raise ResumeError(
                f"{override} is not allowed with resume=: a resumed run keeps the config saved in "
                f"{run_dir / CONFIG_FILE}; only {', '.join(k + '*' if k.endswith('.') else k for k in RESUMABLE_KEYS)} "
                "may change"
            )
    saved = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text()) or []
    new_keys = {_key(o) for o in overrides}
    kept = [o for o in saved if _key(o) not in new_keys | {"resume", "hydra.run.dir"}]
    return flags + kept + overrides + [f"resume={ckpt}", f"hydra.run.dir={run_dir}"]


def changed_keys(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved configs, resumable keys excepted."""
    keys = []
    for key in sorted(set(saved) | set(current)):
        dotted = f"{prefix}{key}"
        if dotted in ("resume", "run_dir") or _is_resumable(dotted):
            continue
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += changed_keys(a, b, dotted + ".")
        elif a != b:
            keys.append(dotted)
    return keys
