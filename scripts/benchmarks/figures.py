"""`--mode figures`: what the training-time figures cost. The digits run of `vaelab.run` (the default
config and the overrides, no progress bar) for `--epochs` epochs with figures off and on, in
alternation: the `trainer.fit` time as wall clock and CPU time, and the ratio on / off of the medians.

That ratio is what a user sees, but it moves with whatever else the machine does. Two steadier
numbers come from each run with figures on: the time the training thread spends in the figure
callback (encoding the test images, the latent grid, waiting for the drawing before) relative to
the rest of the same run, and the time of the drawing in its background thread (matplotlib, the PNG
files, the trackers), which overlaps training and competes with it for Python's GIL.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path

import torch

from vaelab.training.latent_figures import LatentFigures

from .common import (
    Seconds,
    digits_config,
    load,
    median_line,
    medians,
    quiet,
    quietly,
    round_robin,
    run_fit,
    time_fits,
)

SPENT = {"callback": 0.0, "background": 0.0}  # seconds of drawing in the current run, by thread


def timed(function, key: str):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            SPENT[key] += time.perf_counter() - start

    return wrapper


def time_figures() -> None:
    """From now on the figure callback's hooks add their time to SPENT["callback"], and its drawing
    in the background thread to SPENT["background"]."""
    for hook in ("on_validation_epoch_end", "on_train_end", "teardown"):
        setattr(LatentFigures, hook, timed(getattr(LatentFigures, hook), "callback"))
    LatentFigures._finish = staticmethod(timed(LatentFigures._finish, "background"))


def with_figures(cfg) -> tuple[Seconds, float, float]:
    """(the fit's (wall, CPU) seconds, seconds in the figure callback, seconds of background drawing)."""
    SPENT.update(callback=0.0, background=0.0)
    seconds = run_fit(cfg)
    return seconds, SPENT["callback"], SPENT["background"]


def percents(ratios: list[float]) -> str:
    return ", ".join(f"{100 * ratio:+.1f}%" for ratio in ratios)


def main(args) -> None:
    quiet()
    time_fits()
    time_figures()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        count = itertools.count()  # a fresh run directory for every run
        cfg = lambda name, figures: digits_config(
            tmp / f"{name}_{next(count)}",
            args.epochs,
            "trainer.enable_progress_bar=false",
            *args.overrides,
            f"figures.enabled={figures}",  # after the overrides: always the two variants
        )
        probe = cfg("probe", True)
        print(
            f"vaelab bench, figures: digits, {probe.prior._target_.rsplit('.', 1)[-1]}, latent_dim {probe.latent_dim}, "
            f"{args.epochs} epochs, figures every {probe.figures.every_n_epochs} epochs; torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads; {args.repeats} repeats in alternation"
        )
        if args.overrides:
            print(f"  overrides: {' '.join(args.overrides)}")
        print(f"  at the start: {load()}", flush=True)
        # Untimed: the first run imports what a run uses lazily (matplotlib, the TensorBoard writer, ...).
        quietly(lambda: run_fit(digits_config(tmp / "warmup", 2, *args.overrides)))
        runs = round_robin(
            {
                "figures off": lambda: quietly(lambda: run_fit(cfg("off", False))),
                "figures on": lambda: quietly(lambda: with_figures(cfg("on", True))),
            },
            args.repeats,
        )
    off = runs["figures off"]
    on = [seconds for seconds, _, _ in runs["figures on"]]
    print(
        f"\n  training, {args.epochs} epochs: wall clock (x figures off), CPU time (x figures off), the runs wall/CPU"
    )
    print(median_line("figures off", off, medians(off)))
    print(median_line("figures on", on, medians(off)))
    inside = [callback / (seconds[0] - callback) for seconds, callback, _ in runs["figures on"]]
    behind = [(background, background / seconds[0]) for seconds, _, background in runs["figures on"]]
    print(f"\n  figures on, each run: the figure callback / the rest of the run (wall clock): {percents(inside)}")
    print(
        "  the drawing in its background thread: "
        + ", ".join(f"{seconds:.2f} s ({100 * share:.1f}% of the fit)" for seconds, share in behind)
    )
    print(f"\n  at the end: {load()}")
