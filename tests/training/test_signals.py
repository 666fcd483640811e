"""Preemption under Hydra's submitit launcher: the job's handler of the signal belongs to submitit,
which resubmits the job. (Real signals to real processes: tests/end_to_end/test_interrupts.py.)"""

from __future__ import annotations

import signal

from helpers import ROOT

from vaelab.training.signals import TrainingInterrupted, requeue


def test_submitit_requeues_through_its_own_signal_handler():
    """Under Hydra's submitit launcher the job's handler of the preemption signal belongs to
    submitit: it resubmits the job (the launcher's `checkpoint()`), which then resumes."""
    calls = []
    handler_class = type(
        "SignalHandler",
        (),
        {
            "__module__": "submitit.core.job_environment",
            "checkpoint_and_try_requeue": lambda self, s, f: calls.append(s),
        },
    )
    handler = handler_class().checkpoint_and_try_requeue
    stopped = TrainingInterrupted(signal.SIGUSR2, 3, 120, ROOT / "last.ckpt", previous_handler=handler)
    assert requeue(stopped) == "submitit" and calls == [signal.SIGUSR2]
    assert requeue(TrainingInterrupted(signal.SIGTERM, 3, 120, ROOT / "last.ckpt")) is None  # a plain stop

    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher

    assert callable(BaseSubmititLauncher.checkpoint), "the launcher resubmits itself when submitit asks"
