"""The multirun side of vaelab-train (`vaelab.cli.sweep`): parallel jobs divide the cores between
them. (Sweeps on the real command line: tests/end_to_end/test_sweeps.py.)"""

from __future__ import annotations

from vaelab.cli.sweep import threads_per_job


def test_threads_per_job_divide_the_cores_between_parallel_jobs():
    assert threads_per_job(2, cores=2) == 1
    assert threads_per_job(4, cores=16) == 4
    assert threads_per_job(-1, cores=16) == 1  # joblib's -1: as many jobs as cores
    assert threads_per_job(-2, cores=8) == 1  # 7 jobs on 8 cores
    assert threads_per_job(None, cores=8) == 8
    assert threads_per_job(32, cores=8) == 1
