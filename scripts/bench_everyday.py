"""The everyday run's speed (`python scripts/bench.py --mode everyday`): default digits training
against a plain PyTorch loop, where the rest of the time goes, start-up, and the whole run.

1. training: `vaelab.run` with the default config (digits, latent_dim 2, standard prior) for
   `--epochs` epochs, validation every epoch, checkpoints, figures and logging as by default, timed
   as the run times it (`train_seconds`, the `trainer.fit` call), against a plain PyTorch loop over
   the same networks, batches, optimizer and per-epoch validation. Then the same run without one
   ingredient at a time (the progress bar forced on as on a terminal, figures, checkpoints) and a
   bare Lightning fit (no callbacks, logger, checkpoints or bar): the breakdown;
2. start-up: `python train.py --cfg job` and `python -c "import vaelab"` in subprocesses;
3. the whole default run: `python train.py` in a subprocess, wall clock (with `--full`).

Every measurement is repeated `--repeats` times in alternation (round-robin), so drifting load on
a shared machine hits every variant alike; ratios are of medians. Each is given as wall-clock time
and as CPU time (user + system of this process, or of the subprocess): on a machine that other
jobs share, the CPU time hardly moves with their load while the wall clock can double, so the CPU
ratios are the steadier ones (with one torch thread, `--threads 1`, they measure the same work).
Note the load (printed at the start and the end) next to any figure you quote.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from pytorch_lightning.callbacks import ModelCheckpoint

import vaelab

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


FIT: dict[str, tuple[float, float]] = {}  # the last `Trainer.fit`: (wall, CPU) seconds


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = clocks()
    return wall - start[0], cpu - start[1]


def timing_fit(fit):
    def timed(self, *args, **kwargs):
        start = clocks()
        try:
            return fit(self, *args, **kwargs)
        finally:
            FIT["last"] = since(start)

    return timed


def digits_config(run_dir: Path, epochs: int, *overrides: str):
    """The default config, `epochs` epochs (early stopping cannot end it sooner), a cheap evaluation
    (not part of the training time), and `overrides`."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            "train",
            overrides=[
                f"run_dir={run_dir}",
                f"trainer.max_epochs={epochs}",
                "early_stopping.patience=100000",
                "eval.num_samples=10",
                *overrides,
            ],
        )


def plain_loop(cfg) -> tuple[float, float]:
    """Seconds of a hand-written loop doing the default run's arithmetic: the same networks,
    batches (the data module's loaders, shuffled per epoch), optimizer, and a validation pass after
    every epoch (p(z) built once for it, as the model does)."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.dataset.datamodule)
    datamodule.setup("fit")
    model = vaelab.build(cfg, datamodule)
    start = clocks()
    optimizer = model.configure_optimizers()
    train_loader, val_loader = datamodule.train_dataloader(), datamodule.val_dataloader()
    for epoch in range(cfg.trainer.max_epochs):
        model.train()
        train_loader.sampler.set_epoch(epoch)
        beta = 1.0 if cfg.kl_warmup_epochs == 0 else min(1.0, epoch / cfg.kl_warmup_epochs)
        for x, _ in train_loader:
            rec, kl = model.elbo_terms(x)
            loss = -(rec - beta * kl).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            prior = model.prior_dist()
            losses = [(-(rec - kl)).sum() for rec, kl in (model.elbo_terms(x, prior) for x, _ in val_loader)]
            float(sum(losses))
    return since(start)


def bare_lightning(cfg) -> tuple[float, float]:
    """Seconds of `trainer.fit` of the same VAE with no callbacks, logger, checkpoints or bar."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.dataset.datamodule)
    datamodule.setup("fit")
    model = vaelab.build(cfg, datamodule)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=cfg.trainer.max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=datamodule)
    return FIT["last"]


def vaelab_run(cfg, checkpoints: bool = True) -> tuple[float, float]:
    """The `trainer.fit` of `vaelab.run(cfg)`; without checkpoints, ModelCheckpoint saves nothing
    (and the test runs on the last weights)."""
    if checkpoints:
        vaelab.run(cfg)
        return FIT["last"]
    save, test = ModelCheckpoint._save_checkpoint, pl.Trainer.test
    ModelCheckpoint._save_checkpoint = lambda self, trainer, filepath: None
    pl.Trainer.test = lambda self, *args, ckpt_path=None, **kwargs: test(self, *args, **kwargs)
    try:
        vaelab.run(cfg)
        return FIT["last"]
    finally:
        ModelCheckpoint._save_checkpoint, pl.Trainer.test = save, test


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def subprocess_seconds(command: list[str], output: Path | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of a command, its output to `output` (a file: not a terminal) or nowhere."""
    start, cpu = time.perf_counter(), children_cpu()
    with open(output or os.devnull, "w") as sink:
        subprocess.run(
            command,
            cwd=ROOT,
            check=True,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HYDRA_FULL_ERROR": "1"},
        )
    return time.perf_counter() - start, children_cpu() - cpu


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


def median_line(name: str, values: list[tuple[float, float]], reference: tuple[float, float] | None = None) -> str:
    """name, then for wall clock and CPU: the median seconds and its ratio to `reference`; the runs."""
    cells = []
    for kind in (0, 1):
        median = statistics.median(value[kind] for value in values)
        ratio = f"{median / reference[kind]:5.2f}x" if reference else ""
        cells.append(f"{median:7.2f} s {ratio:>6}")
    runs = " ".join(f"{wall:.1f}/{cpu:.1f}" for wall, cpu in values)
    return f"  {name:<44} {cells[0]}   {cells[1]}   ({runs})"


def medians(values: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)


def quietly(measure):
    """Run `measure()` with vaelab's and Lightning's console output thrown away (a pipe, not a terminal)."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        return measure()


def main(args) -> None:
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    pl.Trainer.fit = timing_fit(pl.Trainer.fit)
    print(
        f"vaelab bench, everyday: digits, latent_dim 2, standard prior, {args.epochs} epochs; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.repeats} repeats in alternation"
    )
    print(f"  at the start: {load()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rep = 0
        cfg = lambda name, *o: digits_config(tmp / f"{name}_{rep}", args.epochs, *args.overrides, *o)
        variants = {
            "plain PyTorch loop": lambda: plain_loop(cfg("plain")),
            "vaelab default (no terminal)": lambda: vaelab_run(cfg("default")),
            "bare Lightning fit (no callbacks)": lambda: bare_lightning(cfg("bare")),
        }
        bar_on = ["+log.progress_bar=true"] if "log" not in cfg("probe") else ["log.progress_bar=true"]
        if not args.quick:
            variants.update(
                {
                    "vaelab, progress bar on (as on a terminal)": lambda: vaelab_run(cfg("bar", *bar_on)),
                    "vaelab, no progress bar": lambda: vaelab_run(cfg("nobar", "trainer.enable_progress_bar=false")),
                    "vaelab, no figures": lambda: vaelab_run(cfg("nofig", "figures.enabled=false")),
                    "vaelab, no checkpoints saved": lambda: vaelab_run(cfg("nockpt"), checkpoints=False),
                }
            )
        # Untimed: the first run imports what a run uses lazily (matplotlib, the TensorBoard writer, ...).
        quietly(lambda: vaelab_run(digits_config(tmp / "warmup", 2, *args.overrides)))
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, measure in variants.items():
                times[name].append(quietly(measure))
        plain = medians(times["plain PyTorch loop"])
        print(
            f"\n  training, {args.epochs} epochs: wall clock (x plain loop), CPU time (x plain loop), the runs wall/CPU"
        )
        for name, values in times.items():
            print(median_line(name, values, plain), flush=True)

        print("\n  start-up (subprocess): wall clock, CPU time")
        startup = {
            "python train.py --cfg job": [sys.executable, "train.py", "--cfg", "job"],
            'python -c "import vaelab"': [sys.executable, "-c", "import vaelab"],
        }
        seconds: dict[str, list[tuple[float, float]]] = {name: [] for name in startup}
        for _ in range(args.repeats):
            for name, command in startup.items():
                seconds[name].append(subprocess_seconds(command))
        for name, values in seconds.items():
            print(median_line(name, values), flush=True)

        if args.full:
            print("\n  the whole default run (subprocess, output to a file): wall clock, CPU time")
            full = [
                subprocess_seconds(
                    [sys.executable, "train.py", f"hydra.run.dir={tmp / f'full_{rep}'}", *args.overrides],
                    tmp / f"full_{rep}.out",
                )
                for rep in range(args.repeats)
            ]
            print(median_line("python train.py", full), flush=True)
            output = (tmp / "full_0.out").read_bytes()
            returns = output.count(b"\r")
            print(f"  its output: {len(output) / 1024:.0f} KB, {returns} carriage returns")
    print(f"\n  at the end: {load()}")
