"""The comparison report of a sweep: one row per prior, mean ± std over seeds, one picture.

`write_report(sweep_dir)` reads every job directory of `vaelab-train -m …` (its `.hydra/`
record, `config.yaml`, and `metrics.json` or `failed.json`) and writes into the sweep directory

    comparison.md    the table (best value of each column in bold; rows ranked by the exact NLL where
                     the runs have it, latent_dim <= 2), the picture, the failed jobs
    comparison.csv   the same numbers: <key>_mean, <key>_std, <key>_best per metric
    latent_grid.png  each row's latent figure (`latent.png` of its first completed job) side by side

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
from dataclasses import dataclass
from pathlib import Path

from vaelab.files import atomic_write_text
from vaelab.reports.jobs import COMPLETED, INTERRUPTED, Job, collect, select
from vaelab.reports.latent_grid import write_latent_grid
from vaelab.reports.posthoc import fits_note, paired_section
from vaelab.reports.table import RANK_KEY, Row, best_rows, group, markdown_table, summarize

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


def write_markdown(report: Report) -> None:
    jobs, rows = report.jobs, report.rows
    settings = []
    for key in SETTINGS:  # the same in every job, or "varies"
        values = {str(select(job.config, key)) for job in jobs if select(job.config, key) is not None}
        if values:
            settings.append(f"{key}={values.pop() if len(values) == 1 else '(varies)'}")
    seeds = sorted({str(job.seed) for job in jobs})
    lines = [
        "# Comparison of priors",
        "",
        f"Sweep `{report.sweep_dir}`: {len(jobs)} jobs{fits_note(jobs)}, {len(jobs) - len(report.failed)} completed, "
        f"{len(report.failed)} failed; seeds {', '.join(seeds)}.  ",
        f"Settings: dataset={jobs[0].dataset} {' '.join(settings)}.",
        "",
        "Mean ± standard deviation over the completed seeds of each row; ↓ lower is better, ↑ higher is better; "
        "the best value of each column is in **bold**. NLL = importance-sampled −log p(x) in nats; "
        "KL = I(x;z) + KL(q(z)‖p(z)); hole fraction = share of prior samples where q(z) is below its 1st "
        "percentile at held-out encodings (0.01 if p(z) = q(z)); hole rank = their mean percentile rank there "
        "(0.5 if p(z) = q(z)).",
        *(
            []
            if not any(RANK_KEY in row.stats for row in rows)
            else [
                "Exact NLL = −log p(x) by quadrature over the latent plane (latent_dim ≤ 2), with its quadrature error "
                "bound; the rows are ranked by it, best first."
            ]
        ),
        "",
        markdown_table(rows, report.columns),
        "",
    ]
    if any(job.source is not None for job in jobs):
        lines += paired_section(rows)
    if report.latent_grid is not None:
        lines += [
            "Latent space of each row's first completed job: p(z) and the encoded test data.",
            "",
            f"![latent spaces]({report.latent_grid.name})",
            "",
        ]
    if report.failed:
        lines += ["## Jobs that did not complete", "", "| job | overrides | status |", "|---|---|---|"]
        for job in report.failed:
            overrides = " ".join(job.overrides.values()) or "–"
            lines.append(f"| {job.name} | `{_escape(overrides, 200)}` | {job.status}: {_escape(job.error or '')} |")
        lines.append("")
    atomic_write_text(report.markdown, "\n".join(lines))


def write_csv(report: Report) -> None:
    best = {column[0]: best_rows(report.rows, column) for column in report.columns}
    header = ["prior", "settings", "completed", "failed", "exact_log_prob"]
    for key, *_ in report.columns:
        header += [f"{key}_mean", f"{key}_std", f"{key}_best"]
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
        writer.writerow(values)
    atomic_write_text(report.csv, handle.getvalue())


def write_report(sweep_dir: str | Path) -> Report:
    """Read the sweep's jobs and write comparison.md, comparison.csv and latent_grid.png into it."""
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
    report = Report(sweep_dir, jobs, rows, columns, sweep_dir / "comparison.md", sweep_dir / "comparison.csv", grid)
    write_markdown(report)
    write_csv(report)
    return report
