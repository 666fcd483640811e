"""vaelab's training speed, as ratios to a baseline timed in the same run:

    python scripts/bench.py [--mode paper]   # each prior's training step on the paper preset, x the standard prior's
    python scripts/bench.py --mode everyday  # the default digits run, x a plain PyTorch loop doing the same arithmetic
    python scripts/bench.py --mode figures   # the digits run with the training-time figures on, x with them off
    python scripts/bench.py --mode evaluation  # the importance-sampled likelihood, x its network passes alone

- paper (`experiment=vampprior_paper`, batch 100, K = 500): seconds per step and per epoch of
  each prior and the ratio to the standard prior; the VampPrior with torch's broadcasting
  log-density; the VampPrior's floor (the standard step plus the encoder's pass over the
  pseudo-inputs, timed alone); vaelab's step in a Lightning `Trainer` against a plain loop; with
  `--compile`, the plain loop with `torch.compile`d networks against the same loop eager. The best
  of `--repeats` timings of `--steps` steps after `--warmup` untimed ones (benchmarks/paper.py).
- everyday: the `trainer.fit` of the default run (digits, `--epochs` epochs, validation,
  checkpoints, figures and logging as by default) against a plain loop; the same run without one
  ingredient at a time and a bare Lightning fit (not with `--quick`); the start-up; with `--full`,
  the whole `python train.py`. Medians of wall-clock and of CPU time (benchmarks/everyday.py).
- figures: the digits run with figures off and on; the time in the figure callback relative to the
  rest of the run, and the drawing in its background thread (benchmarks/figures.py).
- evaluation (the paper preset, `model=hvae` and conv networks as overrides): the importance-sampled
  likelihood of `--inputs` images at S = `--samples` against its floor, the same network passes
  as bare calls; and the time scaled to 10000 test images at S = 5000 (benchmarks/evaluation.py).

Seconds depend on the machine and on what else runs on it; ratios within one run much less. Every
mode repeats its measurements `--repeats` times in alternation (round-robin), so that a load
drifting on a shared machine hits every variant alike. Use no more torch threads than free cores:
when other jobs hold a core, torch's threads wait on each other and a step can take several times
longer (on a shared machine, `--threads 1`). Other arguments, anywhere on the command line, are
Hydra overrides for every model:

    python scripts/bench.py --threads 1 --steps 20 --priors standard vamp
    python scripts/bench.py --priors standard vamp optimizer.fused=false
    python scripts/bench.py --device cuda --compile        # on a GPU
    python scripts/bench.py --mode everyday --threads 1 --full
    python scripts/bench.py --mode figures --epochs 50 --repeats 2 prior=flow latent_dim=5
    python scripts/bench.py --mode evaluation --threads 1 --priors standard vamp model=hvae
"""

from __future__ import annotations

import argparse
import importlib
import os

from benchmarks import PRIORS

MODES = ["paper", "everyday", "figures", "evaluation"]  # modules of benchmarks/, imported once the arguments are read
COMPILE_MODES = ["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]


class Priors(argparse.Action):
    """--priors: prior names; a Hydra override after them (key=value, +key=value, ~key) joins the overrides."""

    def __call__(self, parser, namespace, values, option_string=None):
        overrides = [value for value in values if "=" in value or value.startswith("~")]
        priors = [value for value in values if value not in overrides]
        for name in priors:
            if name not in PRIORS:
                parser.error(f"argument --priors: invalid choice: {name!r} (choose from {', '.join(PRIORS)})")
        if not priors:
            parser.error("argument --priors: expected at least one prior")
        setattr(namespace, self.dest, priors)
        namespace.more_overrides = overrides


def parse_args() -> argparse.Namespace:
    opening, rest = __doc__.split("\n\n- ", 1)
    parser = argparse.ArgumentParser(
        description=opening, epilog="- " + rest, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    modes: dict[str, tuple[str, ...]] = {}  # option -> the modes it belongs to

    def option(group, belongs: tuple[str, ...], *names, **kwargs) -> None:
        modes[group.add_argument(*names, **kwargs).dest] = belongs

    shared = parser.add_argument_group("every mode")
    shared.add_argument("--mode", choices=MODES, default="paper", help="what to measure (paper)")
    shared.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="measurements of each variant, in turn (3); paper keeps the best, everyday and figures the median",
    )
    shared.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (all cores)")
    shared.add_argument("overrides", nargs="*", help="Hydra overrides for every model, e.g. encoder.hidden=500")
    group = parser.add_argument_group("paper")
    option(group, ("paper",), "--steps", type=int, default=50, help="timed steps per measurement (50)")
    option(group, ("paper",), "--warmup", type=int, default=5, help="untimed steps first (5)")
    option(
        group,
        ("paper", "evaluation"),
        "--priors",
        nargs="+",
        default=PRIORS,
        action=Priors,
        metavar="PRIOR",
        help=f"the priors to time ({' '.join(PRIORS)}: all)",
    )
    option(group, ("paper",), "--device", default="cpu", choices=["cpu", "cuda"], help="where the models run (cpu)")
    option(
        group,
        ("paper",),
        "--compile",
        nargs="?",
        const="default",
        default=None,
        choices=COMPILE_MODES,
        metavar="MODE",
        help="also time the plain loop with torch.compile on the encoder and decoder (MODE: default, "
        "reduce-overhead, max-autotune, max-autotune-no-cudagraphs)",
    )
    option(
        group,
        ("paper", "evaluation"),
        "--root",
        default=None,
        help="binarized MNIST folder (the dataset config's root)",
    )
    group = parser.add_argument_group("evaluation")
    option(group, ("evaluation",), "--inputs", type=int, default=100, help="test images (100)")
    option(group, ("evaluation",), "--samples", type=int, default=500, help="importance samples per image (500)")
    group = parser.add_argument_group("everyday and figures")
    option(group, ("everyday", "figures"), "--epochs", type=int, default=100, help="epochs per training run (100)")
    group = parser.add_argument_group("everyday")
    option(group, ("everyday",), "--quick", action="store_true", help="only the default run, plain loop and bare fit")
    option(group, ("everyday",), "--full", action="store_true", help="also time the whole `python train.py`")
    args = parser.parse_intermixed_args()
    args.overrides += vars(args).pop("more_overrides", [])
    for dest, belongs in modes.items():
        if args.mode not in belongs and getattr(args, dest) != parser.get_default(dest):
            parser.error(f"--{dest} is an option of --mode {' and '.join(belongs)}, not of --mode {args.mode}")
    import torch  # here: --help and a wrong option answer without loading torch

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    torch.set_num_threads(args.threads)
    return args


def main() -> None:
    args = parse_args()
    importlib.import_module(f"benchmarks.{args.mode}").main(args)


if __name__ == "__main__":
    main()
