"""vaelab-compare: the report of a sweep directory, and its exit status."""

from __future__ import annotations

from helpers.reports import fake_job


def test_compare_script_exit_status(tmp_path):
    import vaelab.cli.compare as script

    assert script.main([str(tmp_path)]) == 2  # no jobs
    fake_job(tmp_path, 0, "flow", 1, {"test/nll": 1.0})
    assert script.main([str(tmp_path)]) == 0
    fake_job(tmp_path, 1, "flow", 2, error="boom")
    assert script.main([str(tmp_path)]) == 1 and (tmp_path / "comparison.md").exists()
