"""What a run says: one line per epoch when the output is not a terminal (and in train.log), no
progress bar there, and a summary line with the test NLL and the ELBO. (The same through a pipe
from the real command line: tests/end_to_end/test_train_command_line.py.)"""

from __future__ import annotations

import logging
import re
import sys
from types import SimpleNamespace

from helpers import CHEAP_EVAL, compose_config
from helpers.runs import epoch_lines

import vaelab
from vaelab.training import logs
from vaelab.training.logs import use_progress_bar

QUICK = ("figures.enabled=false", *CHEAP_EVAL)


def test_epoch_lines_every_n_epochs_and_the_last_one(make_cfg, caplog):
    with caplog.at_level(logging.INFO, logger="vaelab"):
        vaelab.run(make_cfg("trainer.max_epochs=5", "log.every_n_epochs=2", *QUICK))
    assert epoch_lines(caplog.text) == [2, 4, 5]
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("vaelab: prior=standard")]
    assert len(summary) == 1 and re.search(r"test NLL=[\d.]+ \(S=10\) ELBO=-[\d.]+", summary[0]), summary


def test_progress_bar_only_on_a_terminal_unless_asked(monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    assert not use_progress_bar(compose_config())
    assert use_progress_bar(compose_config("log.progress_bar=true"))
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert use_progress_bar(compose_config())
    assert not use_progress_bar(compose_config("log.progress_bar=false"))
    assert not use_progress_bar(compose_config("trainer.enable_progress_bar=false"))


def test_time_per_epoch_of_a_resumed_run_counts_only_the_epochs_it_trained(monkeypatch):
    """A run resumed at epoch 50 that trained 2 epochs in 20 s took 10 s per epoch, not 20/52."""
    clock = iter([100.0, 120.0])
    monkeypatch.setattr(logs.time, "perf_counter", lambda: next(clock))
    epoch_log = logs.EpochLog()
    trainer = SimpleNamespace(current_epoch=50, max_epochs=1000, callback_metrics={})
    epoch_log.on_fit_start(trainer, None)
    epoch_log.on_train_start(trainer, None)
    assert epoch_log.line(trainer, 52).endswith("10.00 s/epoch  20.0 s")
