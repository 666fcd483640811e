"""`vaelab-train resume=<run directory | checkpoint>`: continue a run where it stopped.

The run goes on in its own directory with the config saved there: before Hydra starts,
`resume_argv` turns the command line into the run's original overrides plus
`hydra.run.dir=<run>` and `resume=<checkpoint>`. Overrides that would change the model, the data
or the training are refused (a resume is not a new run); a longer budget and the settings of
what is drawn and evaluated may change (`RESUMABLE_KEYS`).

This module is imported before Hydra and must stay light: no torch, no Lightning.
"""

from __future__ import annotations

from pathlib import Path

from vaelab.errors import ResumeError, RunDirError
from vaelab.overrides import key_of, matches
from vaelab.rundir import RunDir, find_checkpoint, read_yaml

__all__ = ["RESUMABLE_KEYS", "changed_keys", "locate", "resume_argv"]

# Keys a resumed run may change: the budget, the device, and what is drawn, logged and evaluated.
RESUMABLE_KEYS = (
    "trainer.max_epochs",
    "trainer.max_time",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.enable_progress_bar",
    "checkpoint.",
    "eval.",
    "figures.",
    "log.",
)


# Config keys that runs saved before they existed lack, with the value that does what their absence
# did: such a run resumes under a config that has them.
ADDED_KEYS = {"model": {"name": "vae"}, "schedule": {"name": "joint"}}


def _is_resumable(key: str) -> bool:
    return matches(key, RESUMABLE_KEYS)


def locate(target: str) -> tuple[Path, Path]:
    """(run directory, checkpoint) for `resume=<target>`: a run directory (its `last.ckpt`) or a
    checkpoint file inside a run's `checkpoints/`, in a run that Hydra recorded."""
    try:
        run, checkpoint = find_checkpoint(target, want="last", label=f"resume={target}")
    except RunDirError as error:
        raise ResumeError(str(error)) from None
    if not run.hydra_overrides.is_file():
        raise ResumeError(f"resume={target}: {run.path} has no .hydra/overrides.yaml (not started by vaelab-train)")
    return run.path, checkpoint


def resume_argv(argv: list[str]) -> list[str]:
    """The command line Hydra sees: unchanged without `resume=`, else the run's own overrides,
    the allowed new ones, `resume=<checkpoint>` and `hydra.run.dir=<run directory>`."""
    targets = [arg for arg in argv if key_of(arg) == "resume" and "=" in arg]
    if not targets or targets[-1].split("=", 1)[1] in ("", "null"):
        return argv
    if any(arg in ("-m", "--multirun") for arg in argv):
        raise ResumeError(
            "resume= continues one run: to resume a sweep, run the same sweep command again "
            "with the same hydra.sweep.dir"
        )
    run_dir, ckpt = locate(targets[-1].split("=", 1)[1])
    flags = [arg for arg in argv if arg.startswith("-")]
    overrides = [arg for arg in argv if not arg.startswith("-") and key_of(arg) != "resume"]
    for override in overrides:
        if not _is_resumable(key_of(override)):
            raise ResumeError(
                f"{override} is not allowed with resume=: a resumed run keeps the config saved in "
                f"{RunDir(run_dir).config}; only {', '.join(k + '*' if k.endswith('.') else k for k in RESUMABLE_KEYS)} "
                "may change"
            )
    saved = read_yaml(RunDir(run_dir).hydra_overrides) or []
    new_keys = {key_of(o) for o in overrides}
    kept = [o for o in saved if key_of(o) not in new_keys | {"resume", "hydra.run.dir"}]
    return flags + kept + overrides + [f"resume={ckpt}", f"hydra.run.dir={run_dir}"]


def changed_keys(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved configs, resumable keys excepted."""
    keys = []
    for key in sorted(set(saved) | set(current)):
        dotted = f"{prefix}{key}"
        if dotted in ("resume", "run_dir") or _is_resumable(dotted):
            continue
        a, b = saved.get(key), current.get(key)
        if key not in saved and ADDED_KEYS.get(dotted, KeyError) == b:
            continue  # a key the saved run predates, at the value that behaves as the run did
        if isinstance(a, dict) and isinstance(b, dict):
            keys += changed_keys(a, b, dotted + ".")
        elif a != b:
            keys.append(dotted)
    return keys
