"""`vaelab-tune`: the same tuning budget for every prior, then the best setting of each with seeds.

    vaelab-tune --priors standard,mog,vamp --trials 20 --seeds 0-9 --dir outputs/tune/digits
    vaelab-tune --priors mog,flow --trials 5 --seeds 0-2 --dir outputs/tune/short trainer.max_epochs=50
    vaelab-tune --priors standard,mog --trials 20 --jobs 2 --dir outputs/tune/two   # two runs at a time

For each prior, a search of `--trials` trials with Hydra's Optuna sweeper over its space
(`conf/hparams_search/<prior>.yaml`: its own keys and the learning rate), each trial judged by its
best validation loss and never evaluated on the test set; the prior's default setting is the first
trial, so the search shows how far tuning moved it. Then the best trial's setting of every prior is
trained with each of `--seeds` and evaluated on the test set, all in one sweep directory with its
comparison report. Any further `key=value` applies to every run.

    <dir>/study.db           the Optuna studies, one per prior (SQLite)
    <dir>/search/<prior>/    the trials' run directories (and their report: val loss per setting)
    <dir>/final/             the tuned runs, <prior>_seed<n>/, and comparison.md/.csv/.html
    <dir>/tuning.json, .md   per prior: trials, the default's and the best val loss, the best setting

Running the same command again continues: finished trials are not run again, a trial that was
interrupted is asked again with the same values (and resumes in its folder), completed final runs
are skipped. Exit status: 0; 1 when a final run failed; 2 for a bad argument; 128 + n after signal n.
"""

from __future__ import annotations

import argparse
import math
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

from vaelab.errors import ConfigError, VaelabError
from vaelab.files import atomic_write_json, atomic_write_text
from vaelab.overrides import check_overrides, key_of
from vaelab.rundir import conf_dir

__all__ = ["main"]

SEARCH_GROUP = "hparams_search"
INTERRUPTED = "vaelab_interrupted"  # a trial's user attribute: closed by vaelab-tune after an interrupt


def searchable() -> list[str]:
    """The priors with a search space: conf/hparams_search/<prior>.yaml (base.yaml is shared)."""
    return sorted(path.stem for path in (conf_dir() / SEARCH_GROUP).glob("*.yaml") if path.stem != "base")


def parse_seeds(text: str) -> list[int]:
    """`0-9` or `1,2,5`."""
    try:
        if "-" in text:
            first, last = (int(part) for part in text.split("-"))
            seeds = list(range(first, last + 1))
        else:
            seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds:
        raise ConfigError(f"--seeds {text} is not allowed: give a range such as 0-9 or a list such as 1,2,5")
    return seeds


def check_arguments(priors: list[str], trials: int, overrides: list[str]) -> None:
    """Every problem with the command line as one line, before any run starts."""
    allowed = searchable()
    unknown = [prior for prior in priors if prior not in allowed]
    if unknown or not priors:
        raise ConfigError(f"--priors {','.join(unknown) or '(none)'} is not allowed: choose from {', '.join(allowed)}")
    if trials < 1:
        raise ConfigError(f"--trials {trials} is not allowed: it must be a positive integer")
    for override in overrides:
        if key_of(override) in ("prior", "seed", SEARCH_GROUP) or override.startswith("hydra"):
            raise ConfigError(f"{override} is not allowed: vaelab-tune sets prior, seed, hparams_search and hydra.*")
    check_overrides([f"{SEARCH_GROUP}={priors[0]}", *overrides], conf_dir())


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError(
            'vaelab-tune needs the Optuna sweeper: python -m pip install -c constraints.txt -e ".[tune]"'
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # enqueue_trial, which puts the default first and asks an interrupted trial again, is marked experimental
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def prepare_study(storage: str, prior: str, trials: int, defaults: dict[str, Any]) -> tuple[int, int]:
    """Open (or create) the prior's study; return how many trials are still to run and how many the
    study has already (the sampler's seed is offset by it, so that a continued search does not draw
    the values of its first launch again). A trial left
    running by an interrupted search is closed as failed, marked interrupted (it does not count
    against the budget) and asked again with the same values. A new study starts with the prior's
    default setting."""
    optuna = _optuna()
    study = optuna.create_study(study_name=prior, storage=storage, direction="minimize", load_if_exists=True)
    state = optuna.trial.TrialState
    if not study.trials:
        study.enqueue_trial(defaults)
    for frozen in study.get_trials(deepcopy=False, states=(state.RUNNING,)):
        trial = optuna.trial.Trial(study, frozen._trial_id)
        trial.set_user_attr(INTERRUPTED, True)
        study.tell(trial, state=state.FAIL)
        study.enqueue_trial(frozen.params)
    used = [
        trial
        for trial in study.get_trials(deepcopy=False)
        if trial.state in (state.COMPLETE, state.PRUNED)
        or (trial.state == state.FAIL and not trial.user_attrs.get(INTERRUPTED))
    ]
    asked = [trial for trial in study.get_trials(deepcopy=False) if trial.state != state.WAITING]
    return max(0, trials - len(used)), len(asked)


def study_summary(storage: str, prior: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """The prior's search: its trials, the default setting's and the best val loss, the best setting.
    The default's trial is the one with exactly `defaults`' values (none when a default lies outside
    the space, e.g. K = 500 of a preset against choices up to 128)."""
    optuna = _optuna()
    study = optuna.load_study(study_name=prior, storage=storage)
    state = optuna.trial.TrialState
    # A failed run returns +inf (vaelab.cli.sweep.objective); a trial the sweeper could not read is FAIL.
    finished = [trial for trial in study.trials if trial.state == state.COMPLETE and math.isfinite(trial.value)]
    failed = [
        trial
        for trial in study.trials
        if (trial.state == state.COMPLETE and not math.isfinite(trial.value))
        or (trial.state == state.FAIL and not trial.user_attrs.get(INTERRUPTED))
    ]
    first = next((trial for trial in finished if trial.params == defaults), None)
    best = min(finished, key=lambda trial: trial.value, default=None)
    return {
        "trials": len(finished) + len(failed),
        "completed": len(finished),
        "failed": len(failed),
        "default_val_loss": first.value if first is not None else None,
        "default_params": first.params if first is not None else None,
        "best_val_loss": best.value if best is not None else None,
        "best_params": best.params if best is not None else None,
        "best_trial": best.number if best is not None else None,
    }


def search_config(prior: str, overrides: list[str]) -> tuple[dict[str, Any], list[str], int]:
    """(the prior's configured value of every key of its search space, with the command line's
    overrides; the keys its trials' folder names leave out; the sampler's seed)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[f"{SEARCH_GROUP}={prior}", *overrides], return_hydra_config=True)
    fixed = {key_of(override) for override in overrides}  # a key set on the command line is not searched
    defaults = {key: OmegaConf.select(cfg, key) for key in cfg.hydra.sweeper.params if key not in fixed}
    excluded = list(cfg.hydra.job.config.override_dirname.exclude_keys)
    seed = int(cfg.hydra.sweeper.sampler.seed or 0)
    return {key: value for key, value in defaults.items() if value is not None}, excluded, seed


class Child:
    """The one command running at a time; a signal to vaelab-tune is passed on to it, and the tune
    stops with 128 + the signal's number once it has ended (its run saved, to be resumed)."""

    def __init__(self):
        self.process: subprocess.Popen | None = None
        self.signal: int | None = None
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self.forward)

    def forward(self, signum, frame) -> None:
        self.signal = signum
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def run(self, argv: list[str]) -> int:
        if self.signal is not None:  # it came between two commands
            sys.exit(128 + self.signal)
        print("vaelab-tune: " + " ".join(argv[2:]), flush=True)
        self.process = subprocess.Popen(argv)
        status = self.process.wait()
        self.process = None
        if self.signal is not None:
            sys.exit(128 + self.signal)
        return status


def write_summary(folder: Path, summaries: dict[str, dict[str, Any]], trials: int) -> None:
    atomic_write_json(folder / "tuning.json", {"trials_per_prior": trials, "priors": summaries})

    def number(value) -> str:
        return "–" if value is None or not math.isfinite(value) else f"{value:.2f}"

    lines = [
        "# Tuning",
        "",
        f"{trials} trials per prior (Optuna's TPE through Hydra's sweeper; the first trial is the prior's default "
        "setting), each judged by its best validation loss; the best setting of each prior is trained with every "
        "seed in `final/` (its report: `final/comparison.md`).",
        "",
        "| prior | trials | failed | default val loss | best val loss | Δ | best setting |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for prior, summary in summaries.items():
        default, best = summary["default_val_loss"], summary["best_val_loss"]
        delta = f"{best - default:+.2f}" if default is not None and best is not None else "–"
        setting = " ".join(f"{key}={value}" for key, value in (summary["best_params"] or {}).items()) or "–"
        lines.append(
            f"| {prior} | {summary['trials']} | {summary['failed']} | {number(default)} | {number(best)} | {delta} | "
            f"`{setting}` |"
        )
    atomic_write_text(folder / "tuning.md", "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vaelab-tune", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--priors", required=True, help="comma-separated, e.g. standard,mog,vamp")
    parser.add_argument("--trials", type=int, default=20, help="trials per prior (default 20)")
    parser.add_argument("--seeds", default="0-9", help="seeds of the final runs: 0-9 or 1,2,5 (default 0-9)")
    parser.add_argument("--dir", required=True, type=Path, help="the tuning's folder; the same folder continues it")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs at once, in parallel processes (Hydra's joblib launcher; trials asked in batches of this many)",
    )
    parser.add_argument("overrides", nargs="*", help="key=value for every run, e.g. latent_dim=2")
    args = parser.parse_args(argv)
    priors = [prior for prior in args.priors.split(",") if prior]
    try:
        seeds = parse_seeds(args.seeds)
        check_arguments(priors, args.trials, args.overrides)
        if args.jobs < 1:
            raise ConfigError(f"--jobs {args.jobs} is not allowed: it must be a positive integer")
        _optuna()
    except VaelabError as error:
        print(f"vaelab-tune: error: {error}", file=sys.stderr)
        return 2
    folder = args.dir.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{folder / 'study.db'}"
    train = [sys.executable, "-m", "vaelab.cli.train"]
    # Parallel runs through the joblib launcher, each on cores // jobs torch threads (vaelab.cli.sweep).
    parallel = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.jobs}"] if args.jobs > 1 else []
    child = Child()
    summaries = {}
    for prior in priors:
        defaults, excluded, seed = search_config(prior, args.overrides)
        remaining, asked = prepare_study(storage, prior, args.trials, defaults)
        if remaining:
            # a trial's folder is named by its searched values alone
            excluded = ",".join(dict.fromkeys([*excluded, *(key_of(override) for override in args.overrides)]))
            child.run(
                [
                    *train,
                    "-m",
                    f"{SEARCH_GROUP}={prior}",
                    *args.overrides,
                    f"hydra.sweeper.storage={storage}",
                    f"hydra.sweeper.n_trials={remaining}",
                    f"hydra.sweeper.n_jobs={args.jobs}",
                    *parallel,
                    f"hydra.sweeper.sampler.seed={seed + asked}",
                    f"hydra.sweep.dir={folder / 'search' / prior}",
                    f"hydra.job.config.override_dirname.exclude_keys=[{excluded}]",
                ]
            )
        summaries[prior] = study_summary(storage, prior, defaults)
        write_summary(folder, summaries, args.trials)
    failed = 0
    for prior in priors:
        best = summaries[prior]["best_params"]
        if best is None:
            print(f"vaelab-tune: no trial of {prior} completed; it has no final runs", file=sys.stderr)
            failed = 1
            continue
        status = child.run(
            [
                *train,
                "-m",
                f"prior={prior}",
                *args.overrides,
                *(f"{key}={value}" for key, value in best.items()),
                f"seed={','.join(map(str, seeds))}",
                f"hydra.sweep.dir={folder / 'final'}",
                *parallel,
                "hydra.sweep.subdir=${hydra.runtime.choices.prior}_seed${seed}",
            ]
        )
        failed = failed or int(status != 0)
    print(f"vaelab-tune: {folder / 'tuning.md'} and {folder / 'final' / 'comparison.md'}")
    return failed


def entry() -> None:
    """The installed command: `main`'s return value is the exit status."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
