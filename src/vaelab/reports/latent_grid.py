"""The picture of a comparison: each row's latent figure side by side."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from vaelab.files import atomic_write
from vaelab.reports.table import Row, number

__all__ = ["write_latent_grid"]


def write_latent_grid(rows: list[Row], path: Path, ncols: int = 3) -> Path | None:
    """Each row's `latent.png` (its first completed job's) in one picture; None if there is none."""
    panels = []
    for row in rows:
        job = next((job for job in row.completed if (job.dir / "latent.png").is_file()), None)
        if job is not None:
            nll = number(job.metrics.get("test/nll"))
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
