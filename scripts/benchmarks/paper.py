"""`--mode paper`: training steps on the VampPrior paper's benchmark (`experiment=vampprior_paper`):

1. seconds per step and per epoch (500 steps of batch 100) for each prior, and the ratio to the
   standard prior: the mixture priors (K = 500) must not make training slow;
2. the same for the VampPrior with torch's broadcasting `MixtureSameFamily.log_prob` instead of
   vaelab's matrix-product one (what the fast log-density saves);
3. the floor under the VampPrior's cost: the standard step plus, timed alone, the encoder's forward
   and backward pass over the K pseudo-inputs that every VampPrior step needs (exact gradients
   for the encoder and the pseudo-inputs cannot skip it; with K = 500 and batch 100 it is about
   3.5 times the multiply-adds of a whole standard step). vamp / floor near 1 means the mixture
   itself (log-density, logsumexp, weights) costs next to nothing;
4. with `--compile`, the plain loop with `torch.compile` on the encoder and decoder networks
   against the same loop eager;
5. vaelab's training step through a Lightning `Trainer` against a plain PyTorch loop over the same
   networks, optimizer and batches (Lightning's overhead).

Each number is the best of `--repeats` timings of `--steps` steps after `--warmup` untimed ones,
the measurements of a table taken in turn. Uses the real binarized MNIST when `--root` (default:
the dataset config's) holds it, else random bits of the same shape, and says which.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from torch.distributions import MixtureSameFamily

import vaelab
from vaelab.data import BinarizedMNISTDataModule, batch_loader
from vaelab.priors import DiagonalGaussianMixture

from .common import clocks, config, load, quiet, round_robin

STEPS_PER_EPOCH = 500  # 50000 training images, batch 100

OVERRIDES: list[str] = []  # Hydra overrides from the command line, for every model
DEVICE = torch.device("cpu")  # --device


def clock() -> float:
    """Wall time once the device has finished what was queued (CUDA runs asynchronously)."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
    return clocks()[0]


def paper_config(prior: str):
    return config("experiment=vampprior_paper", f"prior={prior}", "run_dir=unused", *OVERRIDES)


def training_images(root: str, num: int) -> tuple[torch.Tensor, str]:
    """`num` training images and where they came from."""
    try:
        x = BinarizedMNISTDataModule(root).load()["train"][0][:num]
        return x, f"binarized MNIST from {root}"
    except ValueError as error:  # missing or malformed files: the loader's message says which
        print(f"(no real data: {error})")
        return torch.bernoulli(torch.full((num, 784), 0.13)), "random bits of the same shape (no real data found)"


def plain_loop(model: vaelab.VAE, loader, warmup: int) -> float:
    """Seconds per step of a hand-written loop: the same loss, backward and optimizer step."""
    model.to(DEVICE)
    optimizer = model.configure_optimizers()
    model.train()
    start = None
    for index, (x, _) in enumerate(loader):
        if index == warmup:
            start = clock()
        rec, kl = model.elbo_terms(x.to(DEVICE, non_blocking=True))
        loss = -(rec - model.kl_weight() * kl).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (clock() - start) / (len(loader) - warmup)


class StepTimer(pl.Callback):
    """Wall time from the start of batch `warmup` to the end of the last batch."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end, self.count = warmup, None, None, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.warmup:
            self.start = clock()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.end, self.count = clock(), batch_idx + 1 - self.warmup


def lightning_loop(model: vaelab.VAE, loader, warmup: int) -> float:
    """Seconds per step of `VAE.training_step` driven by a Trainer (no validation, no logger)."""
    timer = StepTimer(warmup)
    trainer = pl.Trainer(
        accelerator="gpu" if DEVICE.type == "cuda" else "cpu",
        devices=1,
        max_epochs=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(model, train_dataloaders=loader)
    return (timer.end - timer.start) / timer.count


def time_step(prior: str, loader, warmup: int, loop=plain_loop) -> float:
    """Seconds per training step of a fresh model with `prior` in `loop`."""
    pl.seed_everything(0, verbose=False)
    return loop(vaelab.build(paper_config(prior)), loader, warmup)


def pseudo_input_pass(loader, warmup: int) -> float:
    """Seconds per step of the VampPrior's own work alone: the encoder's forward and backward pass
    over the pseudo-inputs (gradients for the encoder and the pseudo-inputs), nothing else."""
    pl.seed_everything(0, verbose=False)
    model = vaelab.build(paper_config("vamp")).to(DEVICE)
    with torch.no_grad():  # (K, 2 L): a hierarchical model's q(z2|x) has its own latent size
        shape = torch.cat(model.encoder.gaussian_params(model.prior.pseudo_inputs()), dim=-1).shape
    weights = torch.randn(shape, device=DEVICE)
    start = None
    for index in range(len(loader)):
        if index == warmup:
            start = clock()
        model.zero_grad()
        mu, logvar = model.encoder.gaussian_params(model.prior.pseudo_inputs())
        (torch.cat([mu, logvar], dim=-1) * weights).sum().backward()
    return (clock() - start) / (len(loader) - warmup)


def time_compiled(prior: str, loader, warmup: int, mode: str) -> tuple[float, float]:
    """(seconds per step, seconds of the first step: compiling) of the plain loop with `torch.compile`
    on the encoder and decoder networks (the distributions, the prior and the loss stay eager)."""
    pl.seed_everything(0, verbose=False)
    model = vaelab.build(paper_config(prior))
    model.encoder.net = torch.compile(model.encoder.net, mode=mode)
    model.decoder.net = torch.compile(model.decoder.net, mode=mode)
    start = clock()
    first = plain_loop(model, [next(iter(loader))] * 2, 1)  # compiles on the first batch
    compile_seconds = clock() - start - first
    return plain_loop(model, loader, warmup), compile_seconds


def time_row(name: str, loader, warmup: int) -> float:
    """Seconds per step for a row of the table: a prior, the VampPrior with torch's broadcasting
    log-density (an (N, K, latent_dim) tensor) in place of vaelab's matrix products, or the
    pseudo-input pass alone."""
    if name == "pseudo-input pass":
        return pseudo_input_pass(loader, warmup)
    if name != "vamp, naive log_prob":
        return time_step(name, loader, warmup)
    fast, DiagonalGaussianMixture.log_prob = DiagonalGaussianMixture.log_prob, MixtureSameFamily.log_prob
    try:
        return time_step("vamp", loader, warmup)
    finally:
        DiagonalGaussianMixture.log_prob = fast


def main(args) -> None:
    global DEVICE
    DEVICE = torch.device(args.device)
    OVERRIDES[:] = args.overrides
    quiet()
    cfg = paper_config("vamp")
    root = args.root or OmegaConf.select(cfg, "dataset.root")
    x, source = training_images(root, (args.warmup + args.steps) * cfg.batch_size)
    loader = batch_loader(x, torch.zeros(len(x), dtype=torch.long), cfg.batch_size, shuffle=False)
    warmup = args.warmup
    nets = f"gated MLPs of {cfg.encoder.hidden}" if "hidden" in cfg.encoder else cfg.encoder._target_.split(".")[-1]
    print(
        f"vaelab bench, paper: experiment=vampprior_paper (latent_dim {cfg.latent_dim}, {nets}, "
        f"batch {cfg.batch_size}, K = {cfg.prior.num_components} for vamp)"
    )
    if args.overrides:
        print(f"  overrides: {' '.join(args.overrides)}")
    where = torch.cuda.get_device_name() if DEVICE.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"  data: {source}; torch {torch.__version__}, {where}, "
        f"best of {args.repeats} x {args.steps} steps after {warmup} warm-up steps"
    )
    print(f"  at the start: {load()}\n", flush=True)

    rows = list(args.priors) + (["vamp, naive log_prob", "pseudo-input pass"] if "vamp" in args.priors else [])
    times = round_robin({name: lambda name=name: time_row(name, loader, warmup) for name in rows}, args.repeats)
    seconds = {name: min(values) for name, values in times.items()}
    print(f"  {'prior':<22} {'s/step':>8} {'s/epoch':>9} {'x standard':>11}")
    for name in [row for row in rows if row != "pseudo-input pass"]:
        ratio = f"{seconds[name] / seconds['standard']:10.2f}x" if "standard" in seconds else ""
        print(f"  {name:<22} {seconds[name]:8.4f} {seconds[name] * STEPS_PER_EPOCH:9.1f} {ratio:>11}", flush=True)

    if "vamp" in seconds and "standard" in seconds:
        alone = seconds["pseudo-input pass"]
        floor = seconds["standard"] + alone
        print(
            f"\n  floor for vamp: standard step + pseudo-input pass alone ({alone:.4f} s) "
            f"= {floor:.4f} s/step, {floor / seconds['standard']:.2f}x standard; vamp / floor = "
            f"{seconds['vamp'] / floor:.2f}"
        )

    if args.compile:
        print(f"\n  torch.compile (mode={args.compile}) on the encoder and decoder, plain loop: s/step eager, compiled")
        for prior in args.priors:
            pair = round_robin(
                {
                    "eager": lambda prior=prior: time_step(prior, loader, warmup),
                    "compiled": lambda prior=prior: time_compiled(prior, loader, warmup, args.compile),
                },
                args.repeats,
            )
            eager, fast = min(pair["eager"]), min(step for step, _ in pair["compiled"])
            compiling = max(first for _, first in pair["compiled"])
            print(
                f"  {prior:<22} eager {eager:.4f}, compiled {fast:.4f} s/step: {fast / eager:.3f}x "
                f"(compiling: {compiling:.1f} s; a process reuses what it compiled)",
                flush=True,
            )

    print("\n  Lightning's overhead: VAE.training_step in a Trainer vs a plain PyTorch loop (same batches)")
    for prior in [p for p in ("standard", "vamp") if p in args.priors]:
        pair = round_robin(
            {
                "plain": lambda prior=prior: time_step(prior, loader, warmup),
                "Lightning": lambda prior=prior: time_step(prior, loader, warmup, loop=lightning_loop),
            },
            args.repeats,
        )
        plain, lightning = min(pair["plain"]), min(pair["Lightning"])
        print(
            f"  {prior:<22} plain {plain:.4f} s/step, Lightning {lightning:.4f} s/step: {lightning / plain:.3f}x",
            flush=True,
        )
    print(f"\n  at the end: {load()}")
