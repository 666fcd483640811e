"""What the modes of `scripts/bench.py` share: configs composed from conf/, clocks, round-robin
repeats, the timing of `Trainer.fit`, and the lines they print."""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytorch_lightning as pl
from hydra import compose, initialize_config_dir

import vaelab
from vaelab.rundir import conf_dir

T = TypeVar("T")
Seconds = tuple[float, float]  # (wall clock, CPU time of this process)

FIT: dict[str, Seconds] = {}  # the last `Trainer.fit`, once `time_fits()` has run


def config(*overrides: str):
    """`conf/train.yaml` with `overrides`, as `python train.py` would compose it."""
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def digits_config(run_dir: Path, epochs: int, *overrides: str):
    """The default config, `epochs` epochs (early stopping cannot end it sooner), a cheap evaluation
    (not part of the training time), and `overrides`."""
    return config(
        f"run_dir={run_dir}",
        f"trainer.max_epochs={epochs}",
        "early_stopping.patience=100000",
        "eval.num_samples=10",
        *overrides,
    )


def quiet() -> None:
    """No Lightning banners or warnings between the lines of a table."""
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def clocks() -> Seconds:
    return time.perf_counter(), time.process_time()


def since(start: Seconds) -> Seconds:
    wall, cpu = clocks()
    return wall - start[0], cpu - start[1]


def round_robin(measures: dict[str, Callable[[], T]], repeats: int) -> dict[str, list[T]]:
    """Every measure `repeats` times, in turn (a, b, c, a, b, c, ...), so that a load drifting on a
    shared machine hits each alike: {name: its results in order}."""
    results: dict[str, list[T]] = {name: [] for name in measures}
    for _ in range(repeats):
        for name, measure in measures.items():
            results[name].append(measure())
    return results


def time_fits() -> None:
    """From now on every `Trainer.fit` leaves its (wall, CPU) seconds in `FIT["last"]`."""
    fit = pl.Trainer.fit

    def timed(self, *args, **kwargs):
        start = clocks()
        try:
            return fit(self, *args, **kwargs)
        finally:
            FIT["last"] = since(start)

    pl.Trainer.fit = timed


def run_fit(cfg) -> Seconds:
    """(wall, CPU) seconds of the `trainer.fit` of `vaelab.run(cfg)` (needs `time_fits()`)."""
    vaelab.run(cfg)
    return FIT["last"]


def quietly(measure: Callable[[], T]) -> T:
    """`measure()` with vaelab's and Lightning's console output thrown away (a pipe, not a terminal)."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        return measure()


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


def medians(values: list[Seconds]) -> Seconds:
    return statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)


def median_line(name: str, values: list[Seconds], reference: Seconds | None = None) -> str:
    """name, then for wall clock and CPU: the median seconds and its ratio to `reference`; the runs."""
    cells = []
    for kind, median in enumerate(medians(values)):
        ratio = f"{median / reference[kind]:5.2f}x" if reference else ""
        cells.append(f"{median:7.2f} s {ratio:>6}")
    runs = " ".join(f"{wall:.1f}/{cpu:.1f}" for wall, cpu in values)
    return f"  {name:<44} {cells[0]}   {cells[1]}   ({runs})"
