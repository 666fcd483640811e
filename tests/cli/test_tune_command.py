"""vaelab-tune's bookkeeping of a study, in one process: the same budget for every prior, the
default setting as the first trial, and a trial left running by an interrupt asked again, not counted."""

from __future__ import annotations

import math

import pytest

optuna = pytest.importorskip("optuna")

from vaelab.cli.tune import INTERRUPTED, check_arguments, parse_seeds, prepare_study, search_config, study_summary  # noqa: E402
from vaelab.errors import ConfigError  # noqa: E402


def test_a_new_study_starts_with_the_default_setting_and_an_interrupted_trial_is_asked_again(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    defaults, excluded, seed = search_config("mog", [])
    assert defaults == {"optimizer.lr": 0.001, "prior.num_components": 16} and "seed" in excluded and seed == 0
    assert search_config("mog", ["prior.num_components=8"])[0] == {"optimizer.lr": 0.001}  # fixed: not searched
    assert prepare_study(storage, "mog", 3, defaults) == (3, 0)  # the default enqueued, nothing asked yet
    study = optuna.load_study(study_name="mog", storage=storage)
    first = study.ask({"optimizer.lr": optuna.distributions.LogUniformDistribution(1e-4, 1e-2)})
    assert first.params == {"optimizer.lr": 0.001}  # the enqueued default
    study.tell(first, 120.0)
    failed = study.ask()
    study.tell(failed, math.inf)  # a failed run: +inf, counted against the budget
    left_running = study.ask({"optimizer.lr": optuna.distributions.LogUniformDistribution(1e-4, 1e-2)})

    assert prepare_study(storage, "mog", 3, defaults) == (1, 3)  # the interrupted trial does not count
    trials = optuna.load_study(study_name="mog", storage=storage).trials
    closed = trials[left_running.number]
    assert closed.state == optuna.trial.TrialState.FAIL and closed.user_attrs[INTERRUPTED]
    assert trials[-1].state == optuna.trial.TrialState.WAITING  # asked again next, with the same values
    again = study.ask({"optimizer.lr": optuna.distributions.LogUniformDistribution(1e-4, 1e-2)})
    assert again.params == left_running.params
    study.tell(again, 110.0)

    summary = study_summary(storage, "mog", {"optimizer.lr": 0.001})
    assert (summary["trials"], summary["completed"], summary["failed"]) == (3, 2, 1)
    assert summary["default_val_loss"] == 120.0 and summary["default_params"] == {"optimizer.lr": 0.001}
    assert summary["best_val_loss"] == 110.0 and summary["best_params"] == left_running.params


@pytest.mark.parametrize(
    "priors, trials, overrides, message",
    [
        (["mog", "vamq"], 3, [], "--priors vamq is not allowed: choose from"),
        (["energy_ncp"], 3, [], "--priors energy_ncp is not allowed"),  # post hoc only: no search
        (["mog"], 0, [], "--trials 0 is not allowed"),
        (["mog"], 3, ["seed=3"], "seed=3 is not allowed: vaelab-tune sets prior, seed"),
        (["mog"], 3, ["optimizer.lrr=1"], "optimizer.lrr"),
    ],
)
def test_bad_arguments_are_one_line(priors, trials, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        check_arguments(priors, trials, overrides)


def test_seeds_are_a_range_or_a_list():
    assert parse_seeds("0-3") == [0, 1, 2, 3] and parse_seeds("1,5") == [1, 5]
    with pytest.raises(ConfigError, match="--seeds x is not allowed"):
        parse_seeds("x")
