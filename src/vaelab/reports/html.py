"""comparison.html: a sweep's report as one self-contained page to look at.

The page holds what comparison.md holds — the table, the intervals and paired differences, the
post-hoc rows, the jobs that did not complete — and, as pictures, the NLL's 95% intervals of every
row and, per row, the latent figure and the grid of prior samples of its first completed job. Every
image is embedded as a data: URI and the style is inline, so the one file can be mailed, archived or
opened from anywhere, with nothing else beside it.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vaelab.files import atomic_write_text
from vaelab.reports.differences import differences_section, primary_key
from vaelab.reports.posthoc import PAIRED_INTRO, PAIRED_TITLE, paired_table
from vaelab.reports.stats import is_reference, t_interval, values_by_seed
from vaelab.reports.table import Row, Table, comparison_table
from vaelab.rundir import RunDir

__all__ = ["interval_figure", "write_html"]

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 90em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
.wide { overflow-x: auto; }
th { background: #f4f4f4; }
.cards { display: flex; flex-wrap: wrap; gap: 1.5em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.8em; }
.card h3 { margin: 0 0 0.4em 0; font-size: 1em; }
.card img { height: 15em; margin-right: 0.5em; }
figure { margin: 1em 0; }
p.note { color: #555; max-width: 60em; }
"""


def _inline(text: str) -> str:
    """A cell or paragraph: HTML-escaped, with **bold** and `code` as the Markdown report writes them."""
    text = html.escape(text, quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def _table(table: Table) -> str:
    def cell(tag: str, i: int, text: str) -> str:
        return f'<{tag} class="num">{_inline(text)}</{tag}>' if i in table.right else f"<{tag}>{_inline(text)}</{tag}>"

    head = "".join(cell("th", i, text) for i, text in enumerate(table.header))
    body = "".join("<tr>" + "".join(cell("td", i, text) for i, text in enumerate(row)) + "</tr>" for row in table.cells)
    notes = "".join(f'<p class="note">{_inline(note)}</p>' for note in table.notes)
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{notes}'


def _png(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'


def interval_figure(rows: list[Row], key: str, title: str, reference: Row | None) -> bytes | None:
    """PNG bytes: each row's mean of `key` with its 95% t interval over seeds, the reference row's
    mean as a dashed line; None when no row has the metric."""
    points = []
    for row in rows:
        interval = t_interval(list(values_by_seed(row, key).values()))
        if interval is not None:
            points.append((row.label, interval))
    if not points:
        return None
    fig = Figure(figsize=(7, 1 + 0.4 * len(points)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for y, (_, interval) in enumerate(points):
        if not math.isnan(interval.low):
            ax.plot([interval.low, interval.high], [y, y], color="C0", linewidth=2)
        ax.plot([interval.mean], [y], "o", color="C0")
    if reference is not None:
        base = t_interval(list(values_by_seed(reference, key).values()))
        if base is not None:
            ax.axvline(base.mean, color="grey", linestyle="--", linewidth=1, label=f"{reference.label} (mean)")
            ax.legend(loc="best", fontsize=8)
    ax.set_yticks(range(len(points)), [label for label, _ in points])
    ax.invert_yaxis()
    ax.set_xlabel(f"{title}: mean and 95% interval over seeds")
    ax.grid(axis="x", alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _cards(rows: list[Row]) -> str:
    """Per row: the latent figure and the prior samples of its first completed job that has them."""
    cards = []
    for row in rows:
        for job in row.completed:
            run = RunDir(job.dir)
            candidates = ((run.latent_figure, "latent space"), (run.samples_figure, "samples"))
            pictures = [(path, alt) for path, alt in candidates if path.is_file()]
            if pictures:
                images = "".join(_png(path.read_bytes(), f"{row.label}: {alt}") for path, alt in pictures)
                cards.append(f'<div class="card"><h3>{_inline(row.label)} — seed {job.seed}</h3>{images}</div>')
                break
    return f'<div class="cards">{"".join(cards)}</div>' if cards else ""


def write_html(report, path: Path, overview: list[str], failed: Table | None) -> Path:
    """Write `report` (a `vaelab.reports.comparison.Report`) to `path` as one self-contained page,
    `overview` (paragraphs) above the table and `failed` (the jobs that did not complete) at the end."""
    parts = ["<h1>Comparison of priors</h1>"]
    parts += [f"<p>{_inline(paragraph)}</p>" for paragraph in overview]
    parts.append(_table(comparison_table(report.rows, report.columns)))
    section = differences_section(report.rows, report.columns, report.paired, report.reference)
    if section is not None:
        title, intro, table = section
        key = primary_key(report.rows)
        heading = next(column[1] for column in report.columns if column[0] == key)
        reference = next((row for row in report.rows if is_reference(row, report.reference)), None)
        figure = interval_figure(report.rows, key, heading, reference)
        parts += [f"<h2>{_inline(title)}</h2>"]
        if figure is not None:
            parts.append(f"<figure>{_png(figure, f'{heading}: 95% intervals')}</figure>")
        parts += [f'<p class="note">{_inline(intro)}</p>', _table(table)]
    posthoc = paired_table(report.rows)
    if posthoc is not None:
        parts += [f"<h2>{PAIRED_TITLE}</h2>", f'<p class="note">{_inline(PAIRED_INTRO)}</p>', _table(posthoc)]
    cards = _cards(report.rows)
    if cards:
        parts += [
            "<h2>Latent spaces and samples</h2>",
            '<p class="note">Per row, its first completed job: p(z) with the encoded test data, and images '
            "decoded from draws z ~ p(z).</p>",
            cards,
        ]
    if failed is not None:
        parts += ["<h2>Jobs that did not complete</h2>", _table(failed)]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>vaelab: comparison of priors — {html.escape(report.sweep_dir.name)}</title>"
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
    atomic_write_text(path, page)
    return path
