"""Which differences between priors are larger than the seed-to-seed spread.

For each row of a comparison, a metric's mean over seeds with its 95% confidence interval from the
t distribution (n − 1 degrees of freedom). For each row against a reference row (by default the
standard prior's), the difference taken within each seed — same data split and seed, different
prior — with its own t interval and a two-sided paired t test; the p-values of the family of
comparisons of one metric are adjusted by Holm's step-down method (Holm, 1979), which keeps the
chance of any false "differs" at most 5% across the whole family without assuming independence.
A row "differs" from the reference when its Holm-adjusted p-value is below 0.05. No torch here.

References:
    Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scandinavian Journal of
    Statistics, 6(2), 65-70.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from vaelab.reports.table import Row, number

__all__ = [
    "ALPHA",
    "Interval",
    "Paired",
    "holm",
    "is_reference",
    "paired_comparisons",
    "reference_for",
    "t_interval",
    "values_by_seed",
]

ALPHA = 0.05  # the family-wise error rate of the "differs" notes; the intervals are at 1 − ALPHA


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided (1 − ALPHA) t interval over `n` values; low = high = mean when the
    values do not vary, NaN bounds when there is only one value."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def t_interval(values: Sequence[float], level: float = 1 - ALPHA) -> Interval | None:
    """mean ± t_{n−1, (1+level)/2} · s / √n of finite `values`; None when there are none."""
    values = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Interval(mean, math.nan, math.nan, 1)
    half = stats.t.ppf((1 + level) / 2, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return Interval(mean, mean - half, mean + half, len(values))


def _paired_p(differences: Sequence[float]) -> float:
    """Two-sided p-value of the paired t test that the mean difference is zero."""
    if len(differences) < 2:
        return math.nan
    if statistics.pstdev(differences) == 0:  # no spread: the test is decided by the sign alone
        return 1.0 if differences[0] == 0 else 0.0
    return float(stats.ttest_1samp(differences, 0.0).pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given: the i-th smallest of m is multiplied by m − i + 1,
    made non-decreasing along that order and capped at 1. NaN stays NaN and does not count in m."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    adjusted = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[i] = running
    return adjusted


def values_by_seed(row: Row, key: str) -> dict[object, float]:
    """seed → the metric of the row's completed job of that seed (finite values only)."""
    values = {}
    for job in row.completed:
        value = number(job.metrics.get(key))
        if value is not None and math.isfinite(value):
            values[job.seed] = value
    return values


@dataclass
class Paired:
    """One row against the reference row on one metric, paired by seed."""

    row: Row
    reference: Row
    key: str
    seeds: list  # the seeds both rows completed
    interval: Interval | None  # of row − reference over those seeds
    p: float
    p_holm: float = math.nan
    family: int = 0  # the number of comparisons Holm's correction was taken over

    @property
    def differs(self) -> bool:
        return self.p_holm < ALPHA


def is_reference(row: Row, reference: str) -> bool:
    """`row` is the one `reference` names (its label, as the table prints it) or a joint-training row
    of the prior `reference`."""
    return row.label.removesuffix(" †") == reference or (row.prior == reference and row.jobs[0].source is None)


def reference_for(row: Row, rows: Sequence[Row], reference: str) -> Row | None:
    """The row to compare `row` with. `reference` names a row, as the table labels it (e.g.
    "exemplar (prior.num_exemplars=null)": one setting of a prior against its others), or a prior:
    then its row with the same settings as `row`, or the only one there is (a sweep whose priors were
    tuned to different settings)."""
    named = [other for other in rows if other.label.removesuffix(" †") == reference]
    if named:
        return named[0]
    candidates = [other for other in rows if other.prior == reference and other.jobs[0].source is None]
    same = [other for other in candidates if other.settings == row.settings]
    return same[0] if same else (candidates[0] if len(candidates) == 1 else None)


def paired_comparisons(rows: Sequence[Row], key: str, reference: str = "standard") -> list[Paired]:
    """Every other row against its reference row on `key`, differences by seed, Holm-adjusted over
    the comparisons that have a p-value."""
    comparisons = []
    for row in rows:
        base = reference_for(row, rows, reference)
        if base is None or base is row:
            continue
        mine, theirs = values_by_seed(row, key), values_by_seed(base, key)
        seeds = [seed for seed in mine if seed in theirs]
        differences = [mine[seed] - theirs[seed] for seed in seeds]
        comparisons.append(Paired(row, base, key, seeds, t_interval(differences), _paired_p(differences)))
    adjusted = holm([paired.p for paired in comparisons])
    family = sum(not math.isnan(paired.p) for paired in comparisons)
    for paired, p_holm in zip(comparisons, adjusted):
        paired.p_holm, paired.family = p_holm, family
    return comparisons
