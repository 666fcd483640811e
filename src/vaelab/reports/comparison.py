"""The comparison report of a sweep: one row per prior, mean ± std over seeds, intervals, pictures.

`write_report(sweep_dir)` reads every job directory of `vaelab-train -m …` (its `.hydra/`
record, `config.yaml`, and `metrics.json` or `failed.json`) and writes into the sweep directory

    comparison.md    the table (best value of each column in bold; rows ranked by the exact NLL where
                     the runs have it, latent_dim <= 2), the NLL's 95% intervals and each row's paired
                     difference from the reference prior (`vaelab.reports.stats`), the picture, the
                     failed jobs
    comparison.csv   the same numbers: <key>_mean, <key>_std, <key>_best, <key>_ci_low, <key>_ci_high
                     per metric, and for the metrics with a better direction the paired difference from
                     the reference: <key>_diff, <key>_diff_ci_low, <key>_diff_ci_high, <key>_diff_p,
                     <key>_diff_p_holm, <key>_diff_seeds
    latent_grid.png  each row's latent figure (`latent.png` of its first completed job) side by side
    comparison.html  all of the above as one self-contained page, with the NLL's intervals drawn and
                     each row's latent figure and prior samples (`vaelab.reports.html`)

Jobs are grouped by their overrides other than `seed`: a sweep over priors and seeds gives one row
per prior; one that also sweeps e.g. latent_dim gives one row per (prior, latent_dim). A job's
post-hoc fits (`posthoc=`, `<job>/posthoc/<name>/`) are jobs too, in rows labelled
`standard → mog (post-hoc)`, and `comparison.md` adds their differences from the joint runs they
refitted, paired by seed (`vaelab.reports.posthoc`).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from vaelab.files import atomic_write_text
from vaelab.reports.differences import differences_section, primary_key
from vaelab.reports.html import write_html
from vaelab.reports.jobs import COMPLETED, INTERRUPTED, Job, collect, select
from vaelab.reports.latent_grid import write_latent_grid
from vaelab.reports.posthoc import fits_note, paired_section
from vaelab.reports.stats import Paired, paired_comparisons, t_interval, values_by_seed
from vaelab.reports.table import RANK_KEY, Row, Table, best_rows, group, markdown_table, summarize

__all__ = ["Report", "write_report"]

# Config keys stated above the table.
SETTINGS = [
    "latent_dim",
    "batch_size",
    "optimizer.lr",
    "eval.num_samples",
    "trainer.max_epochs",
    "early_stopping.patience",
]


@dataclass
class Report:
    sweep_dir: Path
    jobs: list[Job]
    rows: list[Row]
    columns: list[tuple]
    markdown: Path
    csv: Path
    latent_grid: Path | None
    reference: str = "standard"
    paired: dict[str, list[Paired]] = field(default_factory=dict)  # metric key → rows against the reference

    @property
    def html(self) -> Path:
        return self.sweep_dir / "comparison.html"

    @property
    def primary(self) -> str:
        return primary_key(self.rows)

    @property
    def failed(self) -> list[Job]:
        return [job for job in self.jobs if job.status != COMPLETED]

    @property
    def interrupted(self) -> list[Job]:
        return [job for job in self.jobs if job.status == INTERRUPTED]

    def summary(self) -> str:
        done = len(self.jobs) - len(self.failed)
        stopped = f", {len(self.interrupted)} of them interrupted" if self.interrupted else ""
        fits = sum(job.source is not None for job in self.jobs)
        stopped += f"; {fits} of the jobs are post-hoc fits" if fits else ""
        counts = f"{len(self.jobs)} jobs ({done} completed, {len(self.failed)} not completed{stopped})"
        return f"vaelab compare: {counts} → {self.markdown}\n" + markdown_table(self.rows, self.columns)


def _escape(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def overview(report: Report) -> list[str]:
    """The paragraphs above the table: what was swept, with which settings, and how to read the cells."""
    jobs, rows = report.jobs, report.rows
    settings = []
    for key in SETTINGS:  # the same in every job, or "varies"
        values = {str(select(job.config, key)) for job in jobs if select(job.config, key) is not None}
        if values:
            settings.append(f"{key}={values.pop() if len(values) == 1 else '(varies)'}")
    seeds = sorted({str(job.seed) for job in jobs})
    paragraphs = [
        f"Sweep `{report.sweep_dir}`: {len(jobs)} jobs{fits_note(jobs)}, {len(jobs) - len(report.failed)} completed, "
        f"{len(report.failed)} failed; seeds {', '.join(seeds)}. "
        f"Settings: dataset={jobs[0].dataset} {' '.join(settings)}.",
        "Mean ± standard deviation over the completed seeds of each row; ↓ lower is better, ↑ higher is better; "
        "the best value of each column is in **bold**. NLL = importance-sampled −log p(x) in nats; "
        "KL = I(x;z) + KL(q(z)‖p(z)); hole fraction = share of prior samples where q(z) is below its 1st "
        "percentile at held-out encodings (0.01 if p(z) = q(z)); hole rank = their mean percentile rank there "
        "(0.5 if p(z) = q(z)).",
    ]
    if any(RANK_KEY in row.stats for row in rows):
        paragraphs.append(
            "Exact NLL = −log p(x) by quadrature over the latent plane (latent_dim ≤ 2), with its quadrature error "
            "bound; the rows are ranked by it, best first."
        )
    return paragraphs


def failed_table(report: Report) -> Table:
    cells = []
    for job in report.failed:
        overrides = " ".join(job.overrides.values()) or "–"
        cells.append([job.name, f"`{_escape(overrides, 200)}`", f"{job.status}: {_escape(job.error or '')}"])
    return Table(["job", "overrides", "status"], cells)


def write_markdown(report: Report) -> None:
    lines = ["# Comparison of priors", ""]
    for paragraph in overview(report):
        lines += [paragraph, ""]
    lines += [markdown_table(report.rows, report.columns), ""]
    section = differences_section(report.rows, report.columns, report.paired, report.reference)
    if section is not None:
        title, intro, table = section
        lines += [f"## {title}", "", intro, "", table.markdown(), ""]
    lines += paired_section(report.rows)
    if report.latent_grid is not None:
        lines += [
            "Latent space of each row's first completed job: p(z) and the encoded test data.",
            "",
            f"![latent spaces]({report.latent_grid.name})",
            "",
        ]
    if report.failed:
        lines += ["## Jobs that did not complete", "", failed_table(report).markdown(), ""]
    atomic_write_text(report.markdown, "\n".join(lines))


def write_csv(report: Report) -> None:
    best = {column[0]: best_rows(report.rows, column) for column in report.columns}
    header = ["prior", "settings", "completed", "failed", "exact_log_prob"]
    for key, *_ in report.columns:
        header += [f"{key}_mean", f"{key}_std", f"{key}_best", f"{key}_ci_low", f"{key}_ci_high"]
    diffs = [key for key, *_ in report.columns if key in report.paired]
    for key in diffs:
        header += [f"{key}_diff{end}" for end in ("", "_ci_low", "_ci_high", "_p", "_p_holm", "_seeds")]
    header.append("reference")
    handle = io.StringIO(newline="")
    writer = csv.writer(handle)
    writer.writerow(header)
    for i, row in enumerate(report.rows):
        values = [
            row.prior,
            row.settings,
            len(row.completed),
            len(row.jobs) - len(row.completed),
            int(not row.estimated),
        ]
        for key, *_ in report.columns:
            mean, std = row.stats.get(key, (None, None))
            values += ["" if mean is None else mean, "" if std is None else std, int(i in best[key])]
            interval = t_interval(list(values_by_seed(row, key).values()))
            values += ["", ""] if interval is None or interval.n < 2 else [interval.low, interval.high]
        for key in diffs:
            each = next((each for each in report.paired[key] if each.row is row), None)
            if each is None or each.interval is None:
                values += [""] * 6
                continue
            bounds = ["", ""] if each.interval.n < 2 else [each.interval.low, each.interval.high]
            p = ["" if math.isnan(value) else value for value in (each.p, each.p_holm)]
            values += [each.interval.mean, *bounds, *p, len(each.seeds)]
        values.append(report.reference)
        writer.writerow(values)
    atomic_write_text(report.csv, handle.getvalue())


def write_report(sweep_dir: str | Path, reference: str = "standard") -> Report:
    """Read the sweep's jobs and write comparison.md, comparison.csv and latent_grid.png into it;
    the paired differences are taken against the rows of the prior `reference`."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir}: no such sweep directory")
    jobs = collect(sweep_dir)
    if not jobs:
        raise FileNotFoundError(f"{sweep_dir}: no job directories (folders with config.yaml or .hydra/) found")
    rows = group(jobs)
    columns = summarize(rows)
    if any(RANK_KEY in row.stats for row in rows):
        rows.sort(key=lambda row: row.stats[RANK_KEY][0] if RANK_KEY in row.stats else math.inf)
    grid = write_latent_grid(rows, sweep_dir / "latent_grid.png")
    report = Report(
        sweep_dir, jobs, rows, columns, sweep_dir / "comparison.md", sweep_dir / "comparison.csv", grid, reference
    )
    report.paired = {key: paired_comparisons(rows, key, reference) for key, _, better, _ in columns if better}
    write_markdown(report)
    write_csv(report)
    write_html(report, report.html, overview(report), failed_table(report) if report.failed else None)
    return report
