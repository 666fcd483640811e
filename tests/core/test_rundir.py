"""The run directory Hydra makes before the task runs is removed again when the run wrote nothing."""

from __future__ import annotations

from vaelab.rundir import remove_unused_run_dir


def test_only_a_run_directory_with_nothing_but_hydras_files_is_removed(tmp_path):
    hydra_only, with_config, elsewhere = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for run_dir in (hydra_only, with_config):
        (run_dir / ".hydra").mkdir(parents=True)
        (run_dir / ".hydra" / "config.yaml").write_text("seed: 42\n")
        (run_dir / "train.log").write_text("")
    (with_config / "config.yaml").write_text("seed: 42\n")
    assert remove_unused_run_dir(hydra_only) and not hydra_only.exists()
    assert not remove_unused_run_dir(with_config) and (with_config / "config.yaml").exists()
    assert not remove_unused_run_dir(elsewhere)
