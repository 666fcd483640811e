"""`--mode evaluation`: the importance-sampled likelihood, most of an evaluation's time, against its
arithmetic floor, on the paper preset (`experiment=vampprior_paper`; `model=hvae`, `encoder=conv`
and `decoder=conv` as overrides):

- vaelab: `vaelab.evaluation.likelihood.sample_averages` as the evaluation calls it, on `--inputs`
  images with `--samples` samples each, `eval.chunk_size` at a time: z ~ q(z|x) (level by level
  for an HVAE), the decoder's log-likelihood, log p(z) and log q(z|x) in float64, and a running
  log-sum-exp;
- floor: the same network passes as bare module calls on the same shapes, with z drawn beforehand:
  the decoder's network on every z and, for an HVAE, the lower level's two networks, q(z1|x, z2)
  and p(z1|z2), on every z2. No distributions, log-densities or sums.

vaelab / floor near 1 means everything around the networks costs little. A fresh model is timed
(the arithmetic does not depend on the weights), the best of `--repeats` timings, taken in turn;
the last column scales the seconds to the whole test set of 10000 images at S = 5000.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

import vaelab
from vaelab.evaluation.likelihood import sample_averages
from vaelab.priors import HierarchicalPrior

from . import paper
from .common import load, quiet, round_robin

TEST_SET, PAPER_S = 10_000, 5000


def network_passes(model: vaelab.VAE, x: torch.Tensor, z: torch.Tensor) -> None:
    """The floor's arithmetic for one chunk of samples z (chunk, N, L) of the inputs x (N, D)."""
    decoder = model.decoder
    if hasattr(decoder, "net"):  # an MLP
        decoder.net(z)
    else:  # convolutions over the image
        decoder.convs(decoder.to_map(z.reshape(-1, z.shape[-1])).reshape(-1, *decoder.map_shape))
    if isinstance(model.prior, HierarchicalPrior):
        encoder, bottom = model.encoder, model.prior.bottom_dim
        z2 = z[..., bottom:]
        features = encoder.from_x(x).expand(*z2.shape[:-1], -1)
        encoder.bottom.net(torch.cat([features, encoder.from_z2(z2)], dim=-1))
        model.prior.conditional.net(z2)


def time_both(prior: str, x: torch.Tensor, samples: int) -> dict[str, float]:
    """Seconds of vaelab's importance sampling and of its floor, for a fresh model with `prior`."""
    pl.seed_everything(0, verbose=False)
    cfg = paper.paper_config(prior)
    model = vaelab.build(cfg).eval()
    chunk = cfg.eval.chunk_size
    with torch.no_grad():
        p = model.prior_dist()
        start = paper.clock()
        sample_averages(x, model.encode, model.decode, p, samples, chunk)
        ours = paper.clock() - start
        q = model.encode(x)
        draws = [q.sample((min(chunk, samples - first),)) for first in range(0, samples, chunk)]
        start = paper.clock()
        model.encode(x)  # the encoder's pass over the inputs, as in vaelab's
        for z in draws:
            network_passes(model, x, z)
        floor = paper.clock() - start
    return {"vaelab": ours, "floor": floor}


def main(args) -> None:
    paper.OVERRIDES[:] = args.overrides
    quiet()
    cfg = paper.paper_config("standard")
    root = args.root or OmegaConf.select(cfg, "dataset.root")
    x, source = paper.training_images(root, args.inputs)
    hierarchical = cfg.model.name == "hvae"
    print(
        f"vaelab bench, evaluation: experiment=vampprior_paper, model={cfg.model.name}, "
        f"{cfg.encoder._target_.split('.')[-1]} / {cfg.decoder._target_.split('.')[-1]}, "
        f"{args.inputs} inputs x S = {args.samples}, chunk {cfg.eval.chunk_size}"
    )
    if args.overrides:
        print(f"  overrides: {' '.join(args.overrides)}")
    print(
        f"  data: {source}; torch {torch.__version__}, CPU, {torch.get_num_threads()} threads, best of {args.repeats}"
    )
    passes = "decoder" + (", q(z1|x, z2) and p(z1|z2)" if hierarchical else "")
    print(f"  floor: the {passes} networks as bare calls on the same samples")
    print(f"  at the start: {load()}\n", flush=True)

    times = round_robin({p: lambda p=p: time_both(p, x, args.samples) for p in args.priors}, args.repeats)
    scale = TEST_SET / args.inputs * PAPER_S / args.samples / 60
    print(f"  {'prior':<12} {'vaelab (s)':>11} {'floor (s)':>10} {'vaelab / floor':>15} {'test set, S = 5000':>20}")
    for prior, values in times.items():
        ours, floor = min(v["vaelab"] for v in values), min(v["floor"] for v in values)
        minutes = f"{ours * scale:.1f} min"
        print(f"  {prior:<12} {ours:11.4f} {floor:10.4f} {ours / floor:14.2f}x {minutes:>20}", flush=True)
    print(f"\n  at the end: {load()}")
