"""The report's statistics: t intervals over seeds, paired differences by seed, Holm's adjustment,
each checked against a direct scipy computation on the same numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers.reports import fake_job, read_csv
from scipy import stats

from vaelab.reports import write_report
from vaelab.reports.stats import holm, t_interval

NLL = {  # prior → exact NLL by seed 0..4; mog is better than standard at every seed, flow is not
    "standard": [97.9, 98.4, 97.2, 98.8, 97.6],
    "mog": [97.5, 98.1, 96.9, 98.3, 97.4],
    "flow": [98.4, 97.9, 97.3, 98.6, 98.2],
}


def test_the_t_interval_is_scipys():
    values = [97.9, 98.4, 97.2, 98.8, 97.6]
    interval = t_interval(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert (interval.mean, interval.low, interval.high, interval.n) == pytest.approx((np.mean(values), low, high, 5))
    one = t_interval([3.0])
    assert one.mean == 3.0 and math.isnan(one.low) and t_interval([]) is None


def test_holm_multiplies_the_ordered_p_values_and_keeps_them_monotone():
    # ordered 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 → 0.02, 0.03, 0.06, 0.04 → monotone: 0.06 for the last
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    adjusted = holm([0.02, math.nan])
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1])  # NaN is not in the family


def test_report_has_intervals_and_paired_differences_by_seed_against_the_reference(tmp_path):
    num = 0
    for prior, values in NLL.items():
        for seed, value in enumerate(values):
            fake_job(tmp_path, num, prior, seed, {"test/nll": value + 0.2, "test/nll_exact": value})
            num += 1
    report = write_report(tmp_path)
    rows = {row["prior"]: row for row in read_csv(tmp_path / "comparison.csv")}

    pvalues = {}
    for prior in ("mog", "flow"):
        differences = np.subtract(NLL[prior], NLL["standard"])
        low, high = stats.t.interval(0.95, 4, loc=differences.mean(), scale=stats.sem(differences))
        row = rows[prior]
        assert float(row["test/nll_exact_diff"]) == pytest.approx(differences.mean())
        assert (float(row["test/nll_exact_diff_ci_low"]), float(row["test/nll_exact_diff_ci_high"])) == pytest.approx(
            (low, high)
        )
        pvalues[prior] = stats.ttest_rel(NLL[prior], NLL["standard"]).pvalue
        assert float(row["test/nll_exact_diff_p"]) == pytest.approx(pvalues[prior])
        assert row["test/nll_exact_diff_seeds"] == "5" and row["reference"] == "standard"
        ci = stats.t.interval(0.95, 4, loc=np.mean(NLL[prior]), scale=stats.sem(NLL[prior]))
        assert (float(row["test/nll_exact_ci_low"]), float(row["test/nll_exact_ci_high"])) == pytest.approx(ci)
    smaller, larger = sorted(pvalues.values())
    holm_by_hand = {
        p: min(1.0, 2 * smaller) if p == smaller else max(min(1.0, 2 * smaller), larger) for p in pvalues.values()
    }
    for prior, p in pvalues.items():
        assert float(rows[prior]["test/nll_exact_diff_p_holm"]) == pytest.approx(holm_by_hand[p])
    assert rows["standard"]["test/nll_exact_diff"] == ""  # the reference itself

    markdown = report.markdown.read_text()
    assert "## Which differences are beyond chance" in markdown and "over the 2 comparisons" in markdown
    mog = next(line for line in markdown.splitlines() if line.startswith("| mog | 5 |") and "[" in line)
    assert mog.endswith("| **better** |")  # mog is lower at every seed: p < 0.05 after Holm
    flow = next(line for line in markdown.splitlines() if line.startswith("| flow | 5 |") and "[" in line)
    assert flow.endswith("|  |")

    against_mog = write_report(tmp_path, reference="mog")
    assert "Δ vs mog" in against_mog.markdown.read_text()
    assert read_csv(tmp_path / "comparison.csv")[0]["reference"] == "mog"


def test_the_reference_may_be_one_row_of_a_sweep_over_a_prior_s_settings(tmp_path):
    for n, components in enumerate((8, 16, 32)):
        for seed in (0, 1, 2):
            metrics = {"test/nll": 98.0 - 0.1 * n + 0.01 * seed * n}
            fake_job(tmp_path, 3 * n + seed, "mog", seed, metrics, extra=(f"prior.num_components={components}",))
    report = write_report(tmp_path, reference="mog (prior.num_components=8)")
    rows = {row["settings"]: row for row in read_csv(tmp_path / "comparison.csv")}
    assert rows["prior.num_components=8"]["test/nll_diff"] == ""  # the reference itself
    assert float(rows["prior.num_components=32"]["test/nll_diff"]) == pytest.approx(
        -0.2 + 0.02
    )  # mean of -0.2, -0.18, -0.16
    assert "over the 2 comparisons" in report.markdown.read_text()
