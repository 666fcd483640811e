"""`vaelab-fit-prior`: fit a new prior to a trained run, its encoder and decoder frozen.

    vaelab-fit-prior outputs/runs/<run> prior=mog
    vaelab-fit-prior outputs/runs/<run> prior=mog prior.num_components=32 trainer.max_epochs=200
    vaelab-fit-prior outputs/runs/<run> prior=flow seed=1 out=outputs/posthoc/flow1

Only the new prior's parameters train, on the training split, maximising the ELBO (with q(z|x) and
p(x|z) fixed: minimising E_q[-log p(z)]), with the run's optimizer, early stopping on the
validation −ELBO and the usual checkpoints, figures and test evaluation (`vaelab.posthoc`). The
results go to `<run>/posthoc/<prior>` (`_2`, `_3`, … if taken) or `out=<dir>`: config.yaml,
checkpoints/, metrics.json, the figures, train.log and posthoc.json (the joint run's test metrics
before, the refit's after). Overrides: `prior.*`, and the refit's `trainer.*`, `early_stopping.*`,
`optimizer.*`, `seed`, `eval.*`, `figures.*`, `log.*`, `checkpoint.*`. A bad input is one line
(exit status 2) and writes nothing.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from vaelab.errors import VaelabError
from vaelab.rundir import find_checkpoint

__all__ = ["main"]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="vaelab-fit-prior", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path, help="a run directory (config.yaml and checkpoints/best-*.ckpt)")
    parser.add_argument("overrides", nargs="*", help="prior=<option> (required), prior.<key>=…, out=<dir>, …")
    args = parser.parse_args(argv)
    priors = [o.split("=", 1)[1] for o in args.overrides if o.startswith("prior=")]
    outs = [o.split("=", 1)[1] for o in args.overrides if o.startswith("out=")]
    rest = [o for o in args.overrides if not o.startswith(("prior=", "out="))]
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(levelname)s] %(message)s", datefmt="%H:%M:%S")

    try:
        find_checkpoint(args.run, want="best")  # before torch is imported: a bad path answers at once
    except VaelabError as error:
        parser.exit(2, f"vaelab-fit-prior: error: {error}\n")
    from vaelab.posthoc.fit import fit  # imports torch: after the arguments are checked
    from vaelab.posthoc.jobs import prior_options

    try:
        if len(priors) != 1 or not priors[0]:
            parser.exit(
                2,
                f"vaelab-fit-prior: error: give the new prior once, prior=<option>: one of "
                f"{', '.join(prior_options())}\n",
            )
        return fit(args.run, priors[0], rest, out=outs[-1] if outs else None)
    except VaelabError as error:
        parser.exit(2, f"vaelab-fit-prior: error: {error}\n")


def entry() -> None:
    """The installed command (its exit status is 0, not the record `main` returns)."""
    main()


if __name__ == "__main__":
    entry()
