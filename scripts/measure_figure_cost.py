"""How much do the figures cost? Train on digits with figures on and off, alternately, and compare
seconds per epoch of `trainer.fit` (the drawing at the end of training included).

    python scripts/measure_figure_cost.py                     # vamp, latent_dim 2, 100 epochs, 3 repeats
    python scripts/measure_figure_cost.py prior=flow latent_dim=5 --epochs 50 --repeats 2

Extra arguments are Hydra overrides for every run. Two numbers come out: the ratio of the median
epoch times (on / off), which is what a user sees but varies with whatever else the machine does,
and the time spent inside the figure callback relative to the rest of the same run, which is
steadier. Runs go to a temporary directory.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

import vaelab
from vaelab.training.latent_figures import LatentFigures

CONF = Path(__file__).resolve().parents[1] / "conf"
DRAWING = {"seconds": 0.0}


def timed(draw):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        draw(*args, **kwargs)
        DRAWING["seconds"] += time.perf_counter() - start

    return wrapper


def train(run_dir: Path, epochs: int, figures: bool, overrides: list[str]) -> tuple[float, float]:
    """(seconds per epoch, seconds per epoch spent drawing)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"run_dir={run_dir}",
                f"trainer.max_epochs={epochs}",
                "trainer.enable_progress_bar=false",
                "early_stopping.patience=100000",
                "eval.num_samples=10",
                f"figures.enabled={figures}",
                *overrides,
            ],
        )
    DRAWING["seconds"] = 0.0
    metrics = vaelab.run(cfg)
    return metrics["train_seconds"] / epochs, DRAWING["seconds"] / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args, overrides = parser.parse_known_args()
    LatentFigures.draw = timed(LatentFigures.draw)
    epoch: dict[bool, list[float]] = {True: [], False: []}
    inside: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for figures in (False, True):  # alternate, so that machine load affects both alike
                run_dir = Path(tmp) / f"{repeat}_{'on' if figures else 'off'}"
                per_epoch, drawing = train(run_dir, args.epochs, figures, overrides)
                epoch[figures].append(per_epoch)
                if figures:
                    inside.append(drawing / (per_epoch - drawing))
    off, on = statistics.median(epoch[False]), statistics.median(epoch[True])
    print(
        f"seconds per epoch (median of {args.repeats}): figures off {off:.4f}, on {on:.4f} → {100 * (on / off - 1):+.1f}%"
    )
    print(f"  runs off: {[round(t, 4) for t in epoch[False]]}, on: {[round(t, 4) for t in epoch[True]]}")
    print(f"drawing / rest of the same run: {', '.join(f'{100 * r:+.1f}%' for r in inside)}")


if __name__ == "__main__":
    main()
