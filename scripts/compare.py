"""Compare the priors of a finished sweep: `python scripts/compare.py outputs/multirun/<stamp>`.

Writes comparison.md, comparison.csv and latent_grid.png into the sweep directory (the same
report a sweep writes by itself when it ends) and prints the table. Exit status: 0, or 1 when a
job of the sweep failed or left no result (the report is written all the same), or 2 when the
directory holds no sweep.
"""

import argparse
import sys

from vaelab.compare import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="a sweep directory, e.g. outputs/multirun/2026-01-31_12-00-00-000000")
    args = parser.parse_args(argv)
    try:
        report = write_report(args.sweep_dir)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.summary())
    for job in report.failed:
        print(f"failed: {job.dir.name}: {job.error}", file=sys.stderr)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
