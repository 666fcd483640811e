"""The report's section on which differences are larger than chance: each row's primary metric with
its 95% interval over seeds, and its paired difference from the reference prior with the paired t
test's p-value before and after Holm's adjustment (numbers from `vaelab.reports.stats`). The same
table goes into comparison.md and comparison.html."""

from __future__ import annotations

import math

from vaelab.reports.stats import ALPHA, Interval, Paired, is_reference, t_interval, values_by_seed
from vaelab.reports.table import RANK_KEY, Row, Table

__all__ = ["differences_section", "interval_text", "primary_key"]


def primary_key(rows: list[Row]) -> str:
    """The metric the section speaks of: the exact NLL where the runs have it, else the NLL."""
    return RANK_KEY if any(RANK_KEY in row.stats for row in rows) else "test/nll"


def interval_text(interval: Interval | None, decimals: int, sign: str = "") -> str:
    """ "mean [low, high]", or the mean alone from one value."""
    if interval is None:
        return "–"
    mean = f"{interval.mean:{sign}.{decimals}f}"
    if math.isnan(interval.low):
        return mean
    return f"{mean} [{interval.low:{sign}.{decimals}f}, {interval.high:{sign}.{decimals}f}]"


def _p(value: float) -> str:
    return "–" if math.isnan(value) else ("< 0.001" if value < 0.001 else f"{value:.3f}")


def differences_section(
    rows: list[Row], columns: list[tuple], paired: dict[str, list[Paired]], reference: str
) -> tuple[str, str, Table] | None:
    """(title, introduction, table) for the primary metric; None when no row has it."""
    column = next((column for column in columns if column[0] == primary_key(rows)), None)
    if column is None:
        return None
    key, title, better, decimals = column
    by_row = {id(each.row): each for each in paired.get(key, [])}
    family = next(iter(by_row.values())).family if by_row else 0
    intro = (
        f"{title} of each row: mean and 95% interval over its seeds (t distribution). Δ = the row minus "
        f"`{reference}` within each seed (the same seed, the same data split), its mean and 95% interval; "
        f"p = two-sided paired t test; Holm = p adjusted by Holm's method over the {family} "
        f"comparison{'' if family == 1 else 's'} with `{reference}`. A row is marked **better** or **worse** "
        f"when its Holm-adjusted p is below {ALPHA}: a difference larger than the seed-to-seed chance, with "
        "every comparison of the table taken into account."
    )
    if not by_row:
        intro += (
            f" No row of the prior `{reference}` shares seeds with the other rows here, so there are no paired "
            "differences (`vaelab-compare --reference PRIOR` chooses another reference)."
        )
    table = Table(
        ["prior", "seeds", f"{title} [95% CI]", f"Δ vs {reference} [95% CI]", "p", "Holm", ""], [], {1, 2, 3, 4, 5}
    )
    for row in rows:
        interval = t_interval(list(values_by_seed(row, key).values()))
        each = by_row.get(id(row))
        if each is None:
            cells = ["reference" if is_reference(row, reference) else "–", "", "", ""]
        else:
            note = ""
            if each.differs and each.interval is not None:
                note = "**better**" if (each.interval.mean < 0) == (better == "min") else "**worse**"
            cells = [interval_text(each.interval, decimals, "+"), _p(each.p), _p(each.p_holm), note]
        table.cells.append([row.label, str(interval.n if interval else 0), interval_text(interval, decimals), *cells])
    return "Which differences are beyond chance", intro, table
