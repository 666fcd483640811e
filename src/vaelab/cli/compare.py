"""`vaelab-compare`: the comparison report of a finished sweep.

    vaelab-compare outputs/multirun/<stamp>
    vaelab-compare outputs/multirun/<stamp> --reference mog   # paired differences from mog's rows
    vaelab-compare <sweep> --reference "mog (prior.num_components=64)"   # from one row, as labelled

Writes comparison.md, comparison.csv and latent_grid.png into the sweep directory (the report a
sweep writes by itself when it ends) and prints the table. Exit status: 0, or 1 when a job of the
sweep failed or left no result (the report is written all the same), or 2 when the directory
holds no sweep.
"""

from __future__ import annotations

import argparse
import sys

from vaelab.errors import VaelabError
from vaelab.reports import write_report

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vaelab-compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sweep_dir", help="a sweep directory, e.g. outputs/multirun/2026-01-31_12-00-00-000000")
    parser.add_argument(
        "--reference",
        default="standard",
        metavar="PRIOR",
        help="the prior every row is compared with, seed by seed, or one row as the table labels it (default: standard)",
    )
    args = parser.parse_args(argv)
    try:
        report = write_report(args.sweep_dir, reference=args.reference)
    except (FileNotFoundError, VaelabError) as error:
        print(f"vaelab-compare: error: {error}", file=sys.stderr)
        return 2
    print(report.summary())
    for job in report.failed:
        print(f"failed: {job.dir.name}: {job.error}", file=sys.stderr)
    return 1 if report.failed else 0


def entry() -> None:
    """The installed command: `main`'s return value is the exit status."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
