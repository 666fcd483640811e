"""The comparison table: jobs grouped into rows (one per prior and setting, over seeds), each
metric's mean and standard deviation, and the best value of each column."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from vaelab.reports.jobs import COMPLETED, Job

__all__ = [
    "COLUMNS",
    "RANK_KEY",
    "Row",
    "Table",
    "best_rows",
    "comparison_table",
    "group",
    "markdown_table",
    "number",
    "summarize",
]

# (metrics.json key, column header, "min" or "max" is best or None, decimals). Columns no job has are left out.
COLUMNS = [
    ("test/nll", "NLL", "min", 2),
    ("test/nll_exact", "exact NLL", "min", 2),
    ("test/nll_exact_error", "quadrature error", None, 4),
    ("test/elbo", "ELBO", "max", 2),
    ("test/kl", "KL", "min", 2),
    ("test/mutual_info", "I(x;z)", "max", 3),
    ("test/marginal_kl", "KL(q(z)‖p(z))", "min", 3),
    ("test/total_correlation", "TC(q(z))", None, 3),
    ("test/dimwise_kl", "Σ KL(q(z_j)‖p(z_j))", "min", 3),  # factorised priors
    ("test/reverse_kl", "KL(p(z)‖q(z))", "min", 3),
    ("test/hole_fraction_heldout", "hole fraction", "min", 3),
    ("test/hole_rank", "hole rank", "max", 3),
    ("test/active_units", "active units", "max", 1),
    ("test/precision", "precision", "max", 3),  # sample quality (vaelab.evaluation.quality), where the data have labels
    ("test/recall", "recall", "max", 3),
    ("test/fid", "FID", "min", 2),
    ("best_val_loss", "best val loss", "min", 2),  # the objective of a hyperparameter search
    ("epochs", "epochs", "min", 0),
    ("train_seconds", "train time (s)", "min", 1),
]
ESTIMATED = (
    "† log p(z) is estimated (metrics.json: prior/log_prob_estimator), so the NLL is not the usual stochastic "
    "upper bound on −log p(x)."
)
RANK_KEY = "test/nll_exact"  # rows are ranked by it (lowest first) when some job has it
# Config keys stated above the table.


@dataclass
class Table:
    """A table of text cells, written as Markdown (comparison.md) or HTML (comparison.html); cells may
    hold **bold** and `code`. Columns in `right` are right-aligned."""

    header: list[str]
    cells: list[list[str]]
    right: set[int] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)  # paragraphs under the table

    def markdown(self) -> str:
        rule = "|" + "".join("---:|" if i in self.right else "---|" for i in range(len(self.header)))
        lines = ["| " + " | ".join(self.header) + " |", rule]
        lines += ["| " + " | ".join(row) + " |" for row in self.cells]
        return "\n".join(lines + [line for note in self.notes for line in ("", note)])


@dataclass
class Row:
    """The jobs of one prior (and one value of every other swept key), over seeds."""

    prior: str
    settings: str  # the other swept overrides, e.g. "latent_dim=8"; "" for a plain prior sweep
    jobs: list[Job]
    stats: dict[str, tuple[float, float | None]] = field(default_factory=dict)  # key → (mean, std)

    @property
    def label(self) -> str:
        label = f"{self.prior} ({self.settings})" if self.settings else self.prior
        return f"{label} †" if self.estimated else label

    @property
    def estimated(self) -> bool:
        """Some completed job's log p(z) is an estimate (lars): its NLL is not the usual bound."""
        return any(job.metrics.get("prior/exact_log_prob") is False for job in self.completed)

    @property
    def completed(self) -> list[Job]:
        return [job for job in self.jobs if job.status == COMPLETED]


def group(jobs: list[Job]) -> list[Row]:
    """Rows: jobs with the same prior and the same value of every swept key but `seed`."""
    keys = {key for job in jobs for key in job.overrides}
    # `posthoc` names the refits made after a job; it does not change the job's own model.
    varying = [
        key for key in sorted(keys - {"seed", "prior", "posthoc"}) if len({job.overrides.get(key) for job in jobs}) > 1
    ]
    rows: dict[tuple, Row] = {}
    for job in jobs:
        settings = " ".join(job.overrides[key] for key in varying if key in job.overrides)
        rows.setdefault((job.prior, settings), Row(job.prior, settings, [])).jobs.append(job)
    return list(rows.values())


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def summarize(rows: list[Row]) -> list[tuple]:
    """Fill each row's (mean, std) per metric; return the columns some completed job has."""
    completed = [job for row in rows for job in row.completed]
    present = {key for job in completed for key, value in job.metrics.items() if number(value) is not None}
    columns = [column for column in COLUMNS if column[0] in present]
    for row in rows:
        for key, *_ in columns:
            values = [number(job.metrics.get(key)) for job in row.completed]
            values = [value for value in values if value is not None]
            if values:  # an infinite value (say, a quadrature error that could not be bounded) stays infinite
                finite = all(map(math.isfinite, values))
                std = statistics.stdev(values) if len(values) > 1 and finite else None
                row.stats[key] = (statistics.fmean(values) if finite else math.fsum(values) / len(values), std)
    return columns


def best_rows(rows: list[Row], column: tuple) -> set[int]:
    """Indices of the rows with the best mean in `column`, compared at the displayed precision."""
    key, _, better, decimals = column
    if better is None:
        return set()
    means = {i: round(row.stats[key][0], decimals) for i, row in enumerate(rows) if key in row.stats}
    means = {i: mean for i, mean in means.items() if math.isfinite(mean)}
    if not means:
        return set()
    target = (min if better == "min" else max)(means.values())
    return {i for i, mean in means.items() if mean == target}


def _cell(stats: tuple[float, float | None], decimals: int) -> str:
    mean, std = stats
    return f"{mean:.{decimals}f}" if std is None else f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def _runs(row: Row) -> str:
    failed = len(row.jobs) - len(row.completed)
    return f"{len(row.completed)}" if not failed else f"{len(row.completed)} of {len(row.jobs)} ({failed} failed)"


def comparison_table(rows: list[Row], columns: list[tuple]) -> Table:
    """One line per row: mean ± std of each column, the best of each column in bold."""
    best = [best_rows(rows, column) for column in columns]
    arrows = {"min": " ↓", "max": " ↑", None: ""}
    header = ["prior", "runs"] + [f"{title}{arrows[better]}" for _, title, better, _ in columns]
    table = Table(header, [], right=set(range(2, len(header))))
    for i, row in enumerate(rows):
        cells = [row.label if row.completed else f"{row.label} **(failed)**", _runs(row)]
        for column, winners in zip(columns, best):
            key, decimals = column[0], column[3]
            text = _cell(row.stats[key], decimals) if key in row.stats else ("failed" if not row.completed else "–")
            cells.append(f"**{text}**" if i in winners else text)
        table.cells.append(cells)
    if any(row.estimated for row in rows):
        table.notes.append(ESTIMATED)
    return table


def markdown_table(rows: list[Row], columns: list[tuple]) -> str:
    return comparison_table(rows, columns).markdown()
