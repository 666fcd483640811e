"""Sweep job directories written by hand, as a sweep leaves them, for the report's tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml
from PIL import Image


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def fake_job(
    sweep: Path,
    num: int,
    prior: str,
    seed: int,
    metrics: dict | None = None,
    error: str | None = None,
    extra: tuple[str, ...] = (),
    latent: bool = False,
) -> Path:
    """Job `num` of a sweep: Hydra's record of its overrides, its config, and metrics.json (a
    completed job), failed.json (a failed one) or neither (one that did not finish)."""
    job = sweep / f"{num}_{prior}_seed{seed}"
    (job / ".hydra").mkdir(parents=True)
    task = [f"prior={prior}", f"seed={seed}", "trainer=fast", *extra]
    hydra = {
        "hydra": {
            "job": {"num": num},
            "runtime": {"choices": {"prior": prior, "dataset": "digits"}},
            "overrides": {"task": task},
        }
    }
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    (job / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "latent_dim": 2, "eval": {"num_samples": 10}}))
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps({**metrics, "eval": {"seed": seed}, "latent_stats": {}}))
    if error is not None:
        (job / "failed.json").write_text(json.dumps({"error": "NonFiniteLossError", "message": error}))
    if latent:
        Image.new("RGB", (64, 50), (200, 30 * num, 0)).save(job / "latent.png")
    return job
