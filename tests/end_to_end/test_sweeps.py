"""Sweeps on the real command line (`python train.py -m ...`): job directories named by prior, the
comparison report at the end (a user's prior in it too), failed jobs that leave the others running,
two sweeps started together, parallel launchers, a sweep run again that finishes what is left, and
post-hoc refits in a sweep. The sweeps are started side by side, once, as the test run starts
(`run_sweeps`, early work); the joblib launcher's sweep runs alone after them."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from helpers import PRIORS
from helpers.commands import start_train, train, with_python_path
from helpers.reports import read_csv
from helpers.user_prior import write_user_prior
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

from vaelab import reports
from vaelab.cli.sweep import threads_per_job

pytestmark = pytest.mark.slow
# trainer=fast, no pictures, and an evaluation that takes a fraction of a second.
TINY = (
    "trainer=fast",
    "figures.enabled=false",
    "eval.num_samples=10",
    "eval.num_latent_samples=200",
    "eval.exact=false",
    "eval.quality.enabled=false",
)
EVERY_PRIOR = [*PRIORS, "student_t"]  # the built-in priors and a user's
# Small convolutional networks and HVAE layers, for the sweep of every prior on a conv HVAE.
SMALL = (
    "encoder.channels=[8,8]",
    "encoder.kernels=[3,3]",
    "encoder.strides=[1,2]",
    "decoder.channels=[8]",
    "model.hidden=32",
)
RERUN = ("-m", "prior=standard,mog,vamp", *TINY)
POSTHOC = ("-m", "prior=standard", "seed=0,1", "posthoc=mog,vamp", *TINY)


@dataclass
class Sweep:
    """A sweep of this module: the first run's result and directory; for the sweeps that are run
    again, what the test changed and saw between the runs, and the second run's result."""

    first: subprocess.CompletedProcess
    folder: Path
    between: dict = field(default_factory=dict)
    again: subprocess.CompletedProcess | None = None


def interrupt_and_fail(sweep: Path) -> dict:
    """Between the runs of "rerun": mog as if stopped by a signal after its first epoch, vamp as if
    failed; the report of that."""
    jobs = {path.name.split("_")[1]: path for path in sweep.glob("*_seed*")}
    (jobs["mog"] / "metrics.json").unlink()
    (jobs["mog"] / "interrupted.json").write_text(
        json.dumps({"signal": "SIGTERM", "epoch": 1, "step": 4, "checkpoint": "checkpoints/last.ckpt"})
    )
    (jobs["vamp"] / "failed.json").write_text(json.dumps({"error": "RuntimeError", "message": "node died"}))
    report = reports.write_report(sweep)
    status = {job.prior: job.status for job in report.jobs}
    return {"jobs": jobs, "status": status, "markdown": (sweep / "comparison.md").read_text()}


def kill_a_refit(sweep: Path) -> dict:
    """Between the runs of "posthoc": the refits' records and the report of the first run; then one
    refit as if killed before its end."""
    records = {
        (seed, prior): json.loads(
            (sweep / f"{seed}_standard_seed{seed}" / "posthoc" / prior / "posthoc.json").read_text()
        )
        for seed in (0, 1)
        for prior in ("mog", "vamp")
    }
    seen = {
        "records": records,
        "report": (sweep / "comparison.md").read_text(),
        "done": (sweep / "0_standard_seed0" / "posthoc" / "mog" / "posthoc.json").stat().st_mtime_ns,
    }
    (sweep / "1_standard_seed1" / "posthoc" / "vamp" / "posthoc.json").unlink()
    return seen


def run_sweeps(root: Path) -> dict[str, Sweep]:
    """Every sweep of this module but the joblib launcher's, started at once and waited for; the
    ones that are run again are changed as their tests say as soon as their first run has ended,
    and run again. "every prior" and "failing" are started together in one folder, in Hydra's own
    sweep directories (outputs/multirun/<time>); the others in directories given to them."""
    together = root / "together"
    together.mkdir()
    user_dir = write_user_prior(root / "user")
    started = {
        "every prior": start_train(
            "-m",
            f"hydra.searchpath=[file://{user_dir / 'conf'}]",
            f"prior={','.join(EVERY_PRIOR)}",
            *TINY,
            folder=root / "every_output",
            cwd=together,
            env=with_python_path(user_dir),
        ),
        # lr=1e30 makes the loss NaN at the second step; those jobs come first, the good ones after.
        "failing": start_train(
            "-m", "prior=standard,mog", "optimizer.lr=1e30,1e-3", *TINY, folder=root / "failing_output", cwd=together
        ),
    }
    named = {
        "conv hvae": ("-m", "model=hvae", "encoder=conv", "decoder=conv", f"prior={','.join(PRIORS)}", *SMALL, *TINY),
        "bad value": ("-m", "seed=-3,1", *TINY, "trainer.max_epochs=1"),
        "ddp": ("-m", "trainer=ddp_cpu", "figures.enabled=false"),
        "rerun": RERUN,
        "posthoc": POSTHOC,
    }
    folders = {name: root / name.replace(" ", "_") / "sweep" for name in named}
    for name, args in named.items():
        started[name] = start_train(*args, f"hydra.sweep.dir={folders[name]}", folder=folders[name].parent)
    # A sweep that is run again is changed and started again as soon as its first run has ended.
    results, between, again = {}, {}, {}
    chained = {"rerun": (RERUN, interrupt_and_fail), "posthoc": (POSTHOC, kill_a_refit)}
    while len(results) < len(started):
        for name, process in started.items():
            if name in results or process.running():
                continue
            results[name] = process.result()
            if name in chained and results[name].returncode == 0:  # otherwise its test fails on the first run
                args, change = chained[name]
                between[name] = change(folders[name])
                again[name] = start_train(
                    *args, f"hydra.sweep.dir={folders[name]}", folder=folders[name].parent / "again"
                )
        time.sleep(0.1)
    found = sorted((together / "outputs" / "multirun").iterdir())
    folders["every prior"] = next((sweep for sweep in found if (sweep / "1_mog_seed42").is_dir()), None)
    folders["failing"] = next((sweep for sweep in found if (sweep / "1_standard_seed42").is_dir()), None)
    done = {name: Sweep(results[name], folders[name], between.get(name, {})) for name in started}
    for name, process in again.items():
        done[name].again = process.result()
    return done


def joblib_sweep(folder: Path) -> Sweep | None:
    """Two jobs in two processes at once, through the joblib launcher (None where it is not installed)."""
    if importlib.util.find_spec("hydra_plugins.hydra_joblib_launcher") is None:
        return None
    args = ("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "prior=standard,mog", *TINY)
    sweep = folder / "sweep"
    return Sweep(start_train(*args, "trainer.max_epochs=6", f"hydra.sweep.dir={sweep}", folder=folder).result(), sweep)


EARLY = (run_sweeps, joblib_sweep)


@pytest.fixture(scope="module")
def sweeps(early) -> dict[str, Sweep]:
    return early.result(run_sweeps)


def test_a_sweep_over_every_prior_names_jobs_by_prior_and_writes_one_row_per_prior(sweeps):
    """All ten priors and a user's (its YAML found through hydra.searchpath, its module on
    PYTHONPATH) from one command line (a multirun: one start-up instead of eleven)."""
    result, sweep = sweeps["every prior"].first, sweeps["every prior"].folder
    assert result.returncode == 0, result.stderr[-3000:]

    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == sorted(
        f"{i}_{p}_seed42" for i, p in enumerate(EVERY_PRIOR)
    )
    for index, prior in enumerate(EVERY_PRIOR):
        job = sweep / f"{index}_{prior}_seed42"
        assert json.loads((job / "metrics.json").read_text())["epochs"] == 3, prior
        assert "vaelab: prior=" in (job / "train.log").read_text()
    rows = read_csv(sweep / "comparison.csv")
    assert sorted(row["prior"] for row in rows) == sorted(EVERY_PRIOR)
    for key in (
        "test/nll",
        "test/elbo",
        "test/kl",
        "test/mutual_info",
        "test/marginal_kl",
        "test/hole_fraction_heldout",
        "test/hole_rank",
        "test/active_units",
        "epochs",
        "train_seconds",
    ):
        assert all(math.isfinite(float(row[f"{key}_mean"])) for row in rows), key
        assert any(row[f"{key}_best"] == "1" for row in rows), key
    markdown = (sweep / "comparison.md").read_text()
    table = markdown.split("\n| prior | runs |", 1)[1].split("\n\n", 1)[0]
    assert table.count("\n| ") == len(EVERY_PRIOR)  # a row per prior below the header and its rule
    assert "## Which differences are beyond chance" in markdown and "Δ vs standard" in markdown
    assert "\n| student_t |" in markdown  # the user's prior next to the built-in ones
    # TensorBoard names each run by its path under the sweep directory: the prior is in it.
    runs = EventMultiplexer().AddRunsFromDirectory(str(sweep)).Runs()
    assert sorted(runs) == sorted(f"{i}_{p}_seed42/tensorboard" for i, p in enumerate(EVERY_PRIOR))


def test_every_prior_tops_a_convolutional_hvae_from_the_command_line(sweeps):
    """Two stochastic layers, convolutional networks, and each prior on z2 (the pseudo-input priors
    pass images through the conv encoder of z2): trained, evaluated and reported."""
    result, sweep = sweeps["conv hvae"].first, sweeps["conv hvae"].folder
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_csv(sweep / "comparison.csv")
    assert sorted(row["prior"] for row in rows) == sorted(PRIORS)
    for row in rows:
        nll, elbo = float(row["test/nll_mean"]), float(row["test/elbo_mean"])
        assert math.isfinite(nll) and nll <= -elbo + 1e-6, row["prior"]
    config = yaml.safe_load((sweep / "0_standard_seed42" / "config.yaml").read_text())
    assert config["model"]["name"] == "hvae" and config["encoder"]["_target_"] == "vaelab.nets.ConvEncoder"


def test_a_failing_job_leaves_the_others_running_and_the_sweep_exits_nonzero(sweeps):
    result, sweep = sweeps["failing"].first, sweeps["failing"].folder
    assert result.returncode != 0
    assert "2 of 4 jobs failed" in result.stderr

    for name in ("0_standard_seed42", "2_mog_seed42"):
        assert json.loads((sweep / name / "failed.json").read_text())["error"] == "NonFiniteLossError"
    for name in ("1_standard_seed42", "3_mog_seed42"):
        assert math.isfinite(json.loads((sweep / name / "metrics.json").read_text())["test/nll"])
    rows = {(row["prior"], row["settings"]): row for row in read_csv(sweep / "comparison.csv")}
    assert math.isfinite(float(rows["mog", "optimizer.lr=0.001"]["test/nll_mean"]))
    failed_row = rows["mog", "optimizer.lr=1e+30"]
    assert failed_row["completed"] == "0" and failed_row["failed"] == "1" and failed_row["test/nll_mean"] == ""
    markdown = (sweep / "comparison.md").read_text()
    assert "| mog (optimizer.lr=1e+30) **(failed)** |" in markdown
    assert "## Jobs that did not complete" in markdown and "training loss is nan" in markdown


def test_two_sweeps_started_together_get_separate_directories(sweeps):
    """ "every prior" and "failing", started at the same moment in the same folder."""
    every, failing = sweeps["every prior"].folder, sweeps["failing"].folder
    assert every is not None and failing is not None and every != failing
    found = sorted(every.parent.iterdir())
    assert len(found) == 2 and all((sweep / "comparison.md").exists() for sweep in found)
    assert {every, failing} == set(found)


def test_a_bad_value_in_a_sweep_is_a_failed_job(sweeps):
    result, sweep = sweeps["bad value"].first, sweeps["bad value"].folder
    assert result.returncode == 1
    (failed,) = sweep.glob("*/failed.json")
    assert failed.parent.name == "0_standard_seed-3"
    message = json.loads(failed.read_text())["message"]
    assert message == "seed=-3 is not allowed: must be an integer from 0 to 4294967295 (numpy's seed range)"
    assert (sweep / "1_standard_seed1" / "metrics.json").is_file()  # the next job ran


def test_ddp_inside_a_sweep_fails_that_job_with_a_message(sweeps):
    result, sweep = sweeps["ddp"].first, sweeps["ddp"].folder
    assert result.returncode != 0 and "1 of 1 jobs failed" in result.stderr
    failure = json.loads((sweep / "0_standard_seed42" / "failed.json").read_text())
    assert (
        failure["error"] == "ConfigError" and "trainer.strategy=ddp is not allowed in a multirun" in failure["message"]
    )
    assert "| standard **(failed)** | 0 of 1 (1 failed) |" in (sweep / "comparison.md").read_text()


def test_joblib_launcher_runs_jobs_in_parallel_processes_with_divided_threads(early):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="needs hydra-joblib-launcher (.[parallel])")
    import joblib

    run = early.result(joblib_sweep)
    result, sweep = run.first, run.folder
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = [json.loads((sweep / name / "job.json").read_text()) for name in ("0_standard_seed42", "1_mog_seed42")]
    assert jobs[0]["pid"] != jobs[1]["pid"]
    assert max(job["started"] for job in jobs) < min(job["finished"] for job in jobs)  # they overlap in time
    assert all(job["torch_threads"] == threads_per_job(2, joblib.cpu_count()) for job in jobs)
    assert len(read_csv(sweep / "comparison.csv")) == 2


def test_slurm_launcher_config_composes_without_a_cluster():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs hydra-submitit-launcher (.[slurm])")
    result = train("hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu", "--cfg", "hydra")
    assert result.returncode == 0, result.stderr[-3000:]
    launcher = yaml.safe_load(result.stdout)["hydra"]["launcher"]
    assert launcher["_target_"].endswith("SlurmLauncher") and launcher["partition"] == "gpu"
    assert train("hydra/launcher=submitit_slurm", "--cfg", "job").returncode == 0


def test_running_a_sweep_again_skips_completed_jobs_resumes_interrupted_and_reruns_failed(sweeps):
    sweep = sweeps["rerun"]
    assert sweep.first.returncode == 0, sweep.first.stderr[-2000:]
    # Between the runs: mog stopped by a signal after its first epoch, vamp failed.
    assert sweep.between["status"] == {"standard": "completed", "mog": "interrupted", "vamp": "failed"}
    assert "interrupted" in sweep.between["markdown"]

    assert sweep.again.returncode == 0, sweep.again.stderr[-2000:]
    jobs = sweep.between["jobs"]
    starts = {
        prior: [s["mode"] for s in json.loads((path / "job.json").read_text())["starts"]]
        for prior, path in jobs.items()
    }
    assert starts == {"standard": ["fresh"], "mog": ["fresh", "resumed"], "vamp": ["fresh", "fresh"]}
    assert (jobs["vamp"] / "attempts" / "1" / "failed.json").exists(), "the failed attempt's files are kept"
    assert not (jobs["mog"] / "interrupted.json").exists()
    report = reports.write_report(sweep.folder)
    assert {job.status for job in report.jobs} == {"completed"}


def test_a_sweep_refits_each_job_reports_both_rows_and_does_not_refit_twice(sweeps):
    sweep = sweeps["posthoc"]
    assert sweep.first.returncode == 0, sweep.first.stderr[-3000:]
    for (_, prior), record in sweep.between["records"].items():
        assert record["source_prior"] == "standard" and record["prior"] == prior
    report = sweep.between["report"]
    assert "| standard | 2 |" in report and "| standard → mog (post-hoc) | 2 |" in report
    assert "| standard → vamp (post-hoc) | 2 |" in report and "## Post-hoc fits against their joint runs" in report
    # Between the runs: 1_standard_seed1's vamp refit as if killed before the end: fitted again, the attempt kept.
    assert sweep.again.returncode == 0, sweep.again.stderr[-3000:]
    refits = sweep.folder / "0_standard_seed0" / "posthoc"
    assert (refits / "mog" / "posthoc.json").stat().st_mtime_ns == sweep.between["done"]
    assert "fitted earlier: skipped" in (sweep.folder / "0_standard_seed0" / "train.log").read_text()
    unfinished = sweep.folder / "1_standard_seed1" / "posthoc" / "vamp"
    assert (unfinished / "posthoc.json").is_file() and (unfinished / "attempts" / "1" / "metrics.json").is_file()
