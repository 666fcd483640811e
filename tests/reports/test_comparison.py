"""The comparison report of a sweep (comparison.md, comparison.csv, latent_grid.png), from job
directories written by hand: mean and spread over seeds, the best of each column marked, rows ranked
by the exact NLL, failed and unfinished jobs listed."""

from __future__ import annotations

import pytest
from helpers.reports import fake_job, read_csv
from PIL import Image

from vaelab.reports import write_report


def test_report_has_mean_and_std_over_seeds_and_marks_the_best_of_each_column(tmp_path):
    nll = {"standard": [100.0, 102.0, 104.0], "vamp": [90.0, 91.0, 95.0]}
    for p, prior in enumerate(nll):
        for s, value in enumerate(nll[prior]):
            metrics = {"test/nll": value, "test/elbo": -value - 5, "test/active_units": 2, "epochs": 10 * (s + 1)}
            fake_job(tmp_path, 3 * p + s, prior, s + 1, metrics, latent=True)
    report = write_report(tmp_path)

    rows = read_csv(tmp_path / "comparison.csv")
    assert [row["prior"] for row in rows] == ["standard", "vamp"]
    assert float(rows[0]["test/nll_mean"]) == pytest.approx(102.0)
    assert float(rows[0]["test/nll_std"]) == pytest.approx(2.0)
    assert (rows[0]["test/nll_best"], rows[1]["test/nll_best"]) == ("0", "1")  # lower NLL is better
    assert (rows[0]["test/elbo_best"], rows[1]["test/elbo_best"]) == ("0", "1")  # higher ELBO is better
    assert rows[0]["test/active_units_best"] == rows[1]["test/active_units_best"] == "1"  # ties: both marked
    markdown = (tmp_path / "comparison.md").read_text()
    assert "| vamp | 3 | **92.00 ± 2.65** |" in markdown and "| standard | 3 | 102.00 ± 2.00 |" in markdown
    assert "![latent spaces](latent_grid.png)" in markdown and "Failed jobs" not in markdown
    grid = Image.open(report.latent_grid)
    assert grid.width >= 2 * 64 and grid.height >= 50  # two panels side by side


def test_report_ranks_rows_by_the_exact_nll_and_bolds_its_best(tmp_path):
    """The IS NLL and the exact NLL disagree on the order here; the rows follow the exact one."""
    exact = {"standard": (98.0, 97.9), "mog": (97.8, 97.7), "flow": (97.9, 97.5)}  # prior: (IS, exact)
    for p, (prior, (nll, nll_exact)) in enumerate(exact.items()):
        metrics = {"test/nll": nll, "test/nll_exact": nll_exact, "test/nll_exact_error": 1e-4 * (p + 1)}
        fake_job(tmp_path, p, prior, 1, metrics)
    write_report(tmp_path)
    rows = read_csv(tmp_path / "comparison.csv")
    assert [row["prior"] for row in rows] == ["flow", "mog", "standard"]
    assert [row["test/nll_exact_best"] for row in rows] == ["1", "0", "0"]
    assert [row["test/nll_best"] for row in rows] == ["0", "1", "0"]
    assert all(row["test/nll_exact_error_best"] == "0" for row in rows)  # an error is not a ranking
    markdown = (tmp_path / "comparison.md").read_text()
    assert "| prior | runs | NLL ↓ | exact NLL ↓ | quadrature error |" in markdown
    assert "| flow | 1 | 97.90 | **97.50** | 0.0003 |" in markdown and "ranked by it" in markdown


def test_report_lists_failed_and_unfinished_jobs_and_rows_of_other_swept_keys(tmp_path):
    fake_job(tmp_path, 0, "mog", 1, {"test/nll": 100.0}, extra=("latent_dim=2",))
    fake_job(tmp_path, 1, "mog", 2, error="training loss is nan at epoch 0", extra=("latent_dim=2",))
    fake_job(tmp_path, 2, "mog", 1, {"test/nll": 80.0}, extra=("latent_dim=8",))
    fake_job(tmp_path, 3, "mog", 2, extra=("latent_dim=8",))  # neither metrics.json nor failed.json
    report = write_report(tmp_path)

    assert [row.label for row in report.rows] == ["mog (latent_dim=2)", "mog (latent_dim=8)"]
    assert [job.dir.name for job in report.failed] == ["1_mog_seed2", "3_mog_seed2"]
    markdown = (tmp_path / "comparison.md").read_text()
    assert "| mog (latent_dim=2) | 1 of 2 (1 failed) | 100.00 |" in markdown
    assert "NonFiniteLossError: training loss is nan at epoch 0" in markdown
    assert "no result: no metrics.json or failed.json" in markdown
    assert report.latent_grid is None and not (tmp_path / "latent_grid.png").exists()


def test_the_sweep_report_has_precision_recall_and_fid_columns(tmp_path):
    scores = {"standard": (0.5, 0.4, 30.0), "vamp": (0.7, 0.3, 20.0)}  # precision, recall, FID
    for num, (prior, (precision, recall, fid)) in enumerate(scores.items()):
        metrics = {"test/nll": 100.0 - num, "test/precision": precision, "test/recall": recall, "test/fid": fid}
        fake_job(tmp_path, num, prior, 1, metrics)
    write_report(tmp_path)
    rows = {row["prior"]: row for row in read_csv(tmp_path / "comparison.csv")}
    assert (rows["vamp"]["test/precision_best"], rows["standard"]["test/recall_best"]) == ("1", "1")  # higher is better
    assert rows["vamp"]["test/fid_best"] == "1" and rows["standard"]["test/fid_best"] == "0"  # lower is better
    assert "| precision ↑ | recall ↑ | FID ↓ |" in (tmp_path / "comparison.md").read_text()


def test_a_prior_with_an_estimated_log_density_is_marked_in_the_table_and_the_csv(tmp_path):
    fake_job(tmp_path, 0, "standard", 1, {"test/nll": 98.0, "prior/exact_log_prob": True})
    estimator = "Z = E_pi[a(z)] over 100000 samples of pi"
    fake_job(
        tmp_path, 1, "lars", 1, {"test/nll": 97.0, "prior/exact_log_prob": False, "prior/log_prob_estimator": estimator}
    )
    write_report(tmp_path)
    markdown = (tmp_path / "comparison.md").read_text()
    assert "| lars † | 1 | **97.00** |" in markdown and "| standard | 1 | 98.00 |" in markdown
    assert "† log p(z) is estimated" in markdown
    rows = {row["prior"]: row for row in read_csv(tmp_path / "comparison.csv")}
    assert (rows["lars"]["exact_log_prob"], rows["standard"]["exact_log_prob"]) == ("0", "1")
