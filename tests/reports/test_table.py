"""The report's table: jobs grouped into rows by their swept settings, and each row's statistics."""

from __future__ import annotations

from pathlib import Path

from vaelab.reports.jobs import Job
from vaelab.reports.table import Row, group, summarize


def test_an_infinite_value_in_a_job_gives_an_infinite_mean_not_a_crash():
    jobs = [
        Job(
            Path(f"{i}_flow_seed{i}"),
            i,
            "flow",
            i,
            {},
            "completed",
            metrics={"test/nll": 97.0 + i, "test/nll_exact_error": value},
        )
        for i, value in enumerate([0.01, float("inf"), 0.02])
    ]
    (row,) = rows = [Row("flow", "", jobs)]
    summarize(rows)
    assert row.stats["test/nll"] == (98.0, 1.0)
    assert row.stats["test/nll_exact_error"] == (float("inf"), None)


def test_the_posthoc_key_does_not_split_the_joint_rows_of_a_report():
    """Joint runs from a sweep with `posthoc=` and one without belong to the same rows: the key
    names refits made afterwards, not a setting of the joint model."""

    def job(num: int, prior: str, **overrides: str) -> Job:
        typed = {"prior": f"prior={prior}", "seed": "seed=0", **{k: f"{k}={v}" for k, v in overrides.items()}}
        return Job(Path(f"{num}_{prior}"), num, prior, 0, typed, "completed")

    jobs = [job(0, "standard", posthoc="[mog]"), job(1, "standard"), job(2, "mog"), job(3, "mog", latent_dim="4")]
    labels = sorted(row.label for row in group(jobs))
    assert labels == ["mog", "mog (latent_dim=4)", "standard"]
