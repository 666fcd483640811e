"""`--mode everyday`: the default digits run against a plain PyTorch loop, where the rest of the
time goes, start-up, and the whole run.

1. training: `vaelab.run` with the default config (digits, latent_dim 2, standard prior) for
   `--epochs` epochs, validation every epoch, checkpoints, figures and logging as by default, timed
   as the run times it (`train_seconds`, the `trainer.fit` call), against a plain PyTorch loop over
   the same networks, batches, optimizer and per-epoch validation. Then the same run without one
   ingredient at a time (the progress bar forced on as on a terminal, figures, checkpoints) and a
   bare Lightning fit (no callbacks, logger, checkpoints or bar): the breakdown (`--quick`: the
   default run, the plain loop and the bare fit only);
2. start-up: `python train.py --cfg job` and `python -c "import vaelab"` in subprocesses;
3. the whole default run: `python train.py` in a subprocess, wall clock (with `--full`).

Every measurement is repeated `--repeats` times in alternation; ratios are of medians. Each is
given as wall-clock time and as CPU time (user + system of this process, or of the subprocess): on
a machine that other jobs share, the CPU time hardly moves with their load while the wall clock
can double, so the CPU ratios are the steadier ones (with one torch thread, `--threads 1`, they
measure the same work). Note the load (printed at the start and the end) next to any figure you quote.
"""

from __future__ import annotations

import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from pytorch_lightning.callbacks import ModelCheckpoint

import vaelab
from vaelab.rundir import CHECKOUT

from .common import (
    FIT,
    Seconds,
    clocks,
    digits_config,
    load,
    median_line,
    medians,
    quiet,
    quietly,
    round_robin,
    run_fit,
    since,
    time_fits,
)


def plain_loop(cfg) -> Seconds:
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


def bare_lightning(cfg) -> Seconds:
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


def without_checkpoints(cfg) -> Seconds:
    """`run_fit` with a ModelCheckpoint that saves nothing (the test runs on the last weights)."""
    save, test = ModelCheckpoint._save_checkpoint, pl.Trainer.test
    ModelCheckpoint._save_checkpoint = lambda self, trainer, filepath: None
    pl.Trainer.test = lambda self, *args, ckpt_path=None, **kwargs: test(self, *args, **kwargs)
    try:
        return run_fit(cfg)
    finally:
        ModelCheckpoint._save_checkpoint, pl.Trainer.test = save, test


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def subprocess_seconds(command: list[str], output: Path | None = None) -> Seconds:
    """(wall, CPU) seconds of a command, its output to `output` (a file: not a terminal) or nowhere."""
    start, cpu = time.perf_counter(), children_cpu()
    with open(output or os.devnull, "w") as sink:
        subprocess.run(
            command,
            cwd=CHECKOUT,  # where train.py is
            check=True,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HYDRA_FULL_ERROR": "1"},
        )
    return time.perf_counter() - start, children_cpu() - cpu


def main(args) -> None:
    quiet()
    time_fits()
    print(
        f"vaelab bench, everyday: digits, latent_dim 2, standard prior, {args.epochs} epochs; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.repeats} repeats in alternation"
    )
    if args.overrides:
        print(f"  overrides: {' '.join(args.overrides)}")
    print(f"  at the start: {load()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs = itertools.count()  # a fresh run directory for every run
        cfg = lambda name, *o: digits_config(tmp / f"{name}_{next(runs)}", args.epochs, *args.overrides, *o)
        variants = {
            "plain PyTorch loop": lambda: plain_loop(cfg("plain")),
            "vaelab default (no terminal)": lambda: run_fit(cfg("default")),
            "bare Lightning fit (no callbacks)": lambda: bare_lightning(cfg("bare")),
        }
        if not args.quick:
            variants.update(
                {
                    "vaelab, progress bar on (as on a terminal)": lambda: run_fit(cfg("bar", "log.progress_bar=true")),
                    "vaelab, no progress bar": lambda: run_fit(cfg("nobar", "trainer.enable_progress_bar=false")),
                    "vaelab, no figures": lambda: run_fit(cfg("nofig", "figures.enabled=false")),
                    "vaelab, no checkpoints saved": lambda: without_checkpoints(cfg("nockpt")),
                }
            )
        # Untimed: the first run imports what a run uses lazily (matplotlib, the TensorBoard writer, ...).
        quietly(lambda: run_fit(digits_config(tmp / "warmup", 2, *args.overrides)))
        times = round_robin(
            {name: lambda measure=measure: quietly(measure) for name, measure in variants.items()}, args.repeats
        )
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
        seconds = round_robin(
            {name: lambda command=command: subprocess_seconds(command) for name, command in startup.items()},
            args.repeats,
        )
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
