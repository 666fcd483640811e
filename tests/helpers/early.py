"""Command-line work started when the test run starts, in a thread of the test process: its child
processes run on the second core while the tests in this process (one torch thread) run on the
first, and the fixture that needs the work waits for its result.

A test module names its work in `EARLY`: functions that take a fresh folder and return what the
module's slow tests read. They may start processes and read and write files, never torch or Hydra
in this process (the thread runs beside the tests). A module's work starts when one of its slow
tests is in the run, and those tests run after all others
(`conftest.pytest_collection_modifyitems`), so that the work has had time to get done; a test run
alone starts the work when its fixture asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from helpers.commands import stop_all

__all__ = ["Early", "has_early_work"]

Work = Callable[[Path], Any]


def has_early_work(item: pytest.Item) -> bool:
    """A slow test of a module with early work."""
    return item.get_closest_marker("slow") is not None and bool(getattr(getattr(item, "module", None), "EARLY", ()))


class Early:
    """The test run's early work, run one function at a time (each starts its processes side by
    side) in the order it was started."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory):
        self._factory = tmp_path_factory
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="early-work")
        self._futures: dict[Work, Future] = {}

    def start(self, works: Iterable[Work]) -> None:
        for work in works:
            if work not in self._futures:  # its folder is made here, in the tests' thread
                self._futures[work] = self._pool.submit(work, self._factory.mktemp(work.__name__))

    def result(self, work: Work) -> Any:
        """What `work` returned, waited for (started now if it was not yet); its exception if it raised."""
        self.start([work])
        return self._futures[work].result()

    def close(self) -> None:
        """At the end of the test run: work not yet begun is dropped, processes still running are killed."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        stop_all()
