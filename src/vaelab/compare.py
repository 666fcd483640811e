"""The comparison report of a sweep: one row per prior, mean ± std over seeds, one picture.

`write_report(sweep_dir)` reads every job directory of `python train.py -m …` (its `.hydra/`
record, `config.yaml`, and `metrics.json` or `failed.json`) and writes into the sweep directory

    comparison.md    the table (best value of each column in bold; rows ranked by the exact NLL where
                     the runs have it, latent_dim <= 2), the picture, the failed jobs
    comparison.csv   the same numbers: <key>_mean, <key>_std, <key>_best per metric
    latent_grid.png  each row's latent figure (`latent.png` of its first completed job) side by side

Jobs are grouped by their overrides other than `seed`: a sweep over priors and seeds gives one row
per prior; one that also sweeps e.g. latent_dim gives one row per (prior, latent_dim). A job's
post-hoc fits (`posthoc=`, `<job>/posthoc/<name>/`) are jobs too, in rows labelled
`standard → mog (post-hoc)`, and `comparison.md` adds their differences from the joint runs they
refitted, paired by seed (`vaelab.posthoc_report`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vaelab.files import atomic_write, atomic_write_text
from vaelab.resume import INTERRUPTED_FILE

COMPLETED, FAILED, INTERRUPTED, MISSING = "completed", "failed", "interrupted", "no result"

# (metrics.json key, column header, "min" or "max" is best or None, decimals). Columns no job has are left out.
COLUMNS = [
    ("test/nll", "NLL", "min", 2),
    ("test/nll_exact", "exact NLL", "min", 2),
    ("test/nll_exact_error", "quadrature error", None, 4),
    ("test/elbo", "ELBO", "max", 2),
    ("test/kl", "KL", "min", 2),
    ("test/mutual_info", "I(x;z)", "max", 3),
    ("test/marginal_kl", "KL(q(z)‖p(z))", "min", 3),
    ("test/reverse_kl", "KL(p(z)‖q(z))", "min", 3),
    ("test/hole_fraction_heldout", "hole fraction", "min", 3),
    ("test/hole_rank", "hole rank", "max", 3),
    ("test/active_units", "active units", "max", 1),
    ("test/precision", "precision", "max", 3),  # sample quality (vaelab.quality), where the data have labels
    ("test/recall", "recall", "max", 3),
    ("test/fid", "FID", "min", 2),
    ("epochs", "epochs", "min", 0),
    ("train_seconds", "train time (s)", "min", 1),
]
RANK_KEY = "test/nll_exact"  # rows are ranked by it (lowest first) when some job has it
# Config keys stated above the table.
SETTINGS = ["latent_dim", "batch_size", "optimizer.lr", "eval.num_samples", "trainer.max_epochs", "early_stopping.patience"]


@dataclass
class Job:
    """One job directory of a sweep."""

    dir: Path
    num: int
    prior: str
    seed: Any
    overrides: dict[str, str]  # key → the override as typed, e.g. "optimizer.lr" → "optimizer.lr=1e30"
    status: str
    dataset: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    source: Job | None = None  # a post-hoc fit (`<job>/posthoc/<prior>/`): the job whose model it refitted

    @property
    def name(self) -> str:
        return self.dir.name if self.source is None else f"{self.source.dir.name}/posthoc/{self.dir.name}"


@dataclass
class Row:
    """The jobs of one prior (and one value of every other swept key), over seeds."""

    prior: str
    settings: str  # the other swept overrides, e.g. "latent_dim=8"; "" for a plain prior sweep
    jobs: list[Job]
    stats: dict[str, tuple[float, float | None]] = field(default_factory=dict)  # key → (mean, std)

    @property
    def label(self) -> str:
        return f"{self.prior} ({self.settings})" if self.settings else self.prior

    @property
    def completed(self) -> list[Job]:
        return [job for job in self.jobs if job.status == COMPLETED]


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


def _load(path: Path, loader) -> Any:
    try:
        return loader(path.read_text()) if path.is_file() else None
    except (ValueError, yaml.YAMLError):
        return None


def _select(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def read_job(job_dir: Path) -> Job | None:
    """The job in `job_dir`, or None when the folder is not a job (no config written)."""
    hydra = _load(job_dir / ".hydra" / "hydra.yaml", yaml.safe_load) or {}
    config = _load(job_dir / "config.yaml", yaml.safe_load) or _load(job_dir / ".hydra" / "config.yaml", yaml.safe_load)
    if config is None and not hydra:
        return None
    config = config or {}
    overrides = {item.split("=", 1)[0].lstrip("+~"): item for item in _select(hydra, "hydra.overrides.task") or []}
    choices = _select(hydra, "hydra.runtime.choices") or {}
    prior = choices.get("prior") or str(_select(config, "prior._target_") or "?").rsplit(".", 1)[-1]
    num = _select(hydra, "hydra.job.num")
    num = num if isinstance(num, int) else -1
    job = Job(job_dir, num, prior, config.get("seed"), overrides, MISSING, choices.get("dataset"), config=config)
    metrics = _load(job_dir / "metrics.json", json.loads)
    failure = _load(job_dir / "failed.json", json.loads)
    interrupted = _load(job_dir / INTERRUPTED_FILE, json.loads)
    if failure is not None:
        job.status, job.error = FAILED, f"{failure.get('error', 'Error')}: {failure.get('message', '')}"
    elif metrics is not None:
        job.status, job.metrics = COMPLETED, metrics
    elif interrupted is not None:
        job.status = INTERRUPTED
        job.error = (f"stopped by {interrupted.get('signal')} at epoch {interrupted.get('epoch')}, step "
                     f"{interrupted.get('step')}; run the sweep command again to resume it")  # fmt: skip
    else:
        job.error = "no metrics.json or failed.json: the job did not finish (killed, crashed, or still running)"
    return job


def collect(sweep_dir: str | Path) -> list[Job]:
    """Every job of the sweep, in job-number order, each followed by its post-hoc fits."""
    folders = [path for path in sorted(Path(sweep_dir).iterdir()) if path.is_dir() and not path.name.startswith(".")]
    jobs = sorted((job for job in map(read_job, folders) if job is not None), key=lambda job: (job.num, job.dir.name))
    from vaelab.posthoc_report import read_posthoc

    return [each for job in jobs for each in (job, *read_posthoc(job))]


def group(jobs: list[Job]) -> list[Row]:
    """Rows: jobs with the same prior and the same value of every swept key but `seed`."""
    keys = {key for job in jobs for key in job.overrides}
    # `posthoc` names the refits made after a job; it does not change the job's own model.
    varying = [key for key in sorted(keys - {"seed", "prior", "posthoc"}) if len({job.overrides.get(key) for job in jobs}) > 1]
    rows: dict[tuple, Row] = {}
    for job in jobs:
        settings = " ".join(job.overrides[key] for key in varying if key in job.overrides)
        rows.setdefault((job.prior, settings), Row(job.prior, settings, [])).jobs.append(job)
    return list(rows.values())


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def summarize(rows: list[Row]) -> list[tuple]:
    """Fill each row's (mean, std) per metric; return the columns some completed job has."""
    completed = [job for row in rows for job in row.completed]
    present = {key for job in completed for key, value in job.metrics.items() if _number(value) is not None}
    columns = [column for column in COLUMNS if column[0] in present]
    for row in rows:
        for key, *_ in columns:
            values = [_number(job.metrics.get(key)) for job in row.completed]
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


def markdown_table(rows: list[Row], columns: list[tuple]) -> str:
    best = [best_rows(rows, column) for column in columns]
    arrows = {"min": " ↓", "max": " ↑", None: ""}
    header = ["prior", "runs"] + [f"{title}{arrows[better]}" for _, title, better, _ in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * len(columns)]
    for i, row in enumerate(rows):
        cells = [row.label if row.completed else f"{row.label} **(failed)**", _runs(row)]
        for column, winners in zip(columns, best):
            key, decimals = column[0], column[3]
            text = _cell(row.stats[key], decimals) if key in row.stats else ("failed" if not row.completed else "–")
            cells.append(f"**{text}**" if i in winners else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _escape(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def write_markdown(report: Report) -> None:
    from vaelab.posthoc_report import fits_note, paired_section

    jobs, rows = report.jobs, report.rows
    settings = []
    for key in SETTINGS:  # the same in every job, or "varies"
        values = {str(_select(job.config, key)) for job in jobs if _select(job.config, key) is not None}
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
        *([] if not any(RANK_KEY in row.stats for row in rows) else [
            "Exact NLL = −log p(x) by quadrature over the latent plane (latent_dim ≤ 2), with its quadrature error "
            "bound; the rows are ranked by it, best first."]),  # fmt: skip
        "",
        markdown_table(rows, report.columns),
        "",
    ]
    if any(job.source is not None for job in jobs):
        lines += paired_section(rows)
    if report.latent_grid is not None:
        lines += ["Latent space of each row's first completed job: p(z) and the encoded test data.", "",
                  f"![latent spaces]({report.latent_grid.name})", ""]  # fmt: skip
    if report.failed:
        lines += ["## Jobs that did not complete", "", "| job | overrides | status |", "|---|---|---|"]
        for job in report.failed:
            overrides = " ".join(job.overrides.values()) or "–"
            lines.append(f"| {job.name} | `{_escape(overrides, 200)}` | {job.status}: {_escape(job.error or '')} |")
        lines.append("")
    atomic_write_text(report.markdown, "\n".join(lines))


def write_csv(report: Report) -> None:
    best = {column[0]: best_rows(report.rows, column) for column in report.columns}
    header = ["prior", "settings", "completed", "failed"]
    for key, *_ in report.columns:
        header += [f"{key}_mean", f"{key}_std", f"{key}_best"]
    handle = io.StringIO(newline="")
    writer = csv.writer(handle)
    writer.writerow(header)
    for i, row in enumerate(report.rows):
        values = [row.prior, row.settings, len(row.completed), len(row.jobs) - len(row.completed)]
        for key, *_ in report.columns:
            mean, std = row.stats.get(key, (None, None))
            values += ["" if mean is None else mean, "" if std is None else std, int(i in best[key])]
        writer.writerow(values)
    atomic_write_text(report.csv, handle.getvalue())


def write_latent_grid(rows: list[Row], path: Path, ncols: int = 3) -> Path | None:
    """Each row's `latent.png` (its first completed job's) in one picture; None if there is none."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    panels = []
    for row in rows:
        job = next((job for job in row.completed if (job.dir / "latent.png").is_file()), None)
        if job is not None:
            nll = _number(job.metrics.get("test/nll"))
            title = f"{row.label}, seed {job.seed}" + (f": NLL {nll:.2f}" if nll is not None else "")
            panels.append((title, Image.open(job.dir / "latent.png").convert("RGB")))
    if not panels:
        return None
    ncols = min(ncols, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    width, height = panels[0][1].size
    fig = Figure(figsize=(ncols * width / 100, nrows * (height + 40) / 100), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    for index, (title, image) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, index + 1)
        ax.imshow(image)
        ax.set_title(title, fontsize=13)
        ax.set_axis_off()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    return path


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
