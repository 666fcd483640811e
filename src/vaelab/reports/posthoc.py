"""Post-hoc fits in a sweep's report: the section of `comparison.md` with each fit against the
joint run it refitted, paired by seed (the fits are read as jobs by `vaelab.reports.jobs`).

Two rows of the main table (`standard` and `standard → mog (post-hoc)`) differ by the seed-to-seed
spread of the joint runs as well as by the refit; the difference taken within each seed (same
encoder and decoder, same test evaluation) removes the spread and leaves what the refit changed.
With the encoder and decoder frozen the reconstruction and entropy terms do not move, so ΔELBO is
minus the change of the cross-entropy E_q[−log p(z)] on the test set: an ELBO that goes down is
over-fitting of the prior to the training split or an unfinished fit. Light on purpose (no torch).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from vaelab.reports.table import Table

__all__ = ["PAIRED_TITLE", "fits_note", "paired_section", "paired_table"]

PAIRED_TITLE = "Post-hoc fits against their joint runs"
PAIRED_INTRO = (
    "Each post-hoc fit minus the joint run whose encoder and decoder it kept, per seed, then mean ± standard "
    "deviation over the seeds (negative Δ NLL and Δ KL, positive Δ ELBO: the refit is better)."
)


def fits_note(jobs) -> str:
    """How many of a report's jobs are post-hoc fits, for its first line."""
    fits = sum(job.source is not None for job in jobs)
    return f" ({len(jobs) - fits} trainings and {fits} post-hoc fits of their models)" if fits else ""


# (metrics key, column title, decimals); the differences are fit − joint, per seed.
DELTAS = [
    ("test/nll", "Δ NLL", 3),
    ("test/nll_exact", "Δ exact NLL", 3),
    ("test/elbo", "Δ ELBO", 3),
    ("test/marginal_kl", "Δ KL(q(z)‖p(z))", 4),
    ("test/reverse_kl", "Δ KL(p(z)‖q(z))", 4),
]


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def paired_differences(row) -> dict[str, list[float]]:
    """key → the per-seed differences (fit − joint) of a post-hoc row's completed fits."""
    deltas: dict[str, list[float]] = {}
    for fit in row.completed:
        for key, *_ in DELTAS:
            after, before = _number(fit.metrics.get(key)), _number(fit.source.metrics.get(key))
            if after is not None and before is not None:
                deltas.setdefault(key, []).append(after - before)
    return deltas


def paired_table(rows) -> Table | None:
    """One line per post-hoc row: mean ± std over seeds of fit − joint; None without post-hoc rows."""
    fits = [(row, paired_differences(row)) for row in rows if row.jobs and row.jobs[0].source is not None]
    columns = [column for column in DELTAS if any(column[0] in deltas for _, deltas in fits)]
    if not fits or not columns:
        return None
    table = Table(["post-hoc fit", "seeds", *(title for _, title, _ in columns)], [], set(range(2, 2 + len(columns))))
    for row, deltas in fits:
        cells = []
        for key, _, decimals in columns:
            values = deltas.get(key, [])
            if not values:
                cells.append("–")
                continue
            mean = statistics.fmean(values)
            std = f" ± {statistics.stdev(values):.{decimals}f}" if len(values) > 1 else ""
            cells.append(f"{mean:+.{decimals}f}{std}")
        table.cells.append([row.label, str(len(row.completed)), *cells])
    return table


def paired_section(rows) -> list[str]:
    """Markdown lines of the section, or none without post-hoc rows."""
    table = paired_table(rows)
    return [] if table is None else [f"## {PAIRED_TITLE}", "", PAIRED_INTRO, "", table.markdown(), ""]
