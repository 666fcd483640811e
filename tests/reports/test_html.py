"""comparison.html: one self-contained page that names every row and embeds its pictures."""

from __future__ import annotations

import base64
import io
import re

from helpers.reports import fake_job
from PIL import Image

from vaelab.reports import write_report


def test_the_html_report_embeds_its_images_and_names_every_prior(tmp_path):
    priors = ["standard", "mog", "flow"]
    for p, prior in enumerate(priors):
        for seed in (0, 1, 2):
            job = fake_job(tmp_path, 3 * p + seed, prior, seed, {"test/nll": 98.0 - p + 0.1 * seed}, latent=True)
            Image.new("L", (40, 40), 60 * p).save(job / "samples.png")
    fake_job(tmp_path, 9, "vamp", 0, error="training loss is nan at epoch 3")
    report = write_report(tmp_path)

    page = report.html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "Which differences are beyond chance" in page
    for prior in [*priors, "vamp"]:
        assert f"<td>{prior}</td>" in page
    assert "training loss is nan at epoch 3" in page  # the failed job's row at the end
    sources = re.findall(r'src="([^"]*)"', page)
    assert not re.search(r'(href|src)="(?!data:)', page)  # nothing loaded from beside the page
    assert len(sources) == 1 + 2 * len(priors)  # the intervals, and per prior its latent figure and samples
    images = [Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) for src in sources]
    assert all(image.format == "PNG" for image in images)
    own = {(image.size, image.getpixel((0, 0))) for image in images[1:]}
    job_files = {
        (image.size, image.getpixel((0, 0)))
        for path in sorted(tmp_path.glob("*_seed0/*.png"))
        for image in [Image.open(path)]
    }
    assert own == job_files  # seed 0 of each prior: its own latent.png and samples.png
