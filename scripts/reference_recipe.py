"""The blog post's digits recipe in plain PyTorch, as a reference for vaelab's default run.

    OMP_NUM_THREADS=1 python scripts/reference_recipe.py --seeds 0-9 --input-scale 1
    OMP_NUM_THREADS=1 python scripts/reference_recipe.py --seeds 0-9 --input-scale 16 --json out.json

A VAE with an N(0, I) prior written from scratch, with no vaelab code: scikit-learn's digits split by
index (1000 train, 350 validation, 447 test), encoder and decoder MLPs of two LeakyReLU layers of
256 units, a categorical decoder over the 17 grey levels, latent_dim 2, one reparameterised draw
per example and KL = log q(z|x) - log p(z) at it, Adamax at lr 1e-3, batches of 64 shuffled each
epoch, at most 1000 epochs with early stopping after 20 epochs without a lower validation loss, the
best epoch's weights kept; then the test set's -log p(x) by importance sampling with S samples
from q(z|x). `--input-scale` divides the encoder's input (vaelab's default divides the 0..16
values by 16; the post's code feeds them raw). Prints one line per seed and the mean ± std.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import time

import torch
from sklearn.datasets import load_digits
from torch import nn


def parse_seeds(text: str) -> list[int]:
    if "-" in text:
        first, last = map(int, text.split("-"))
        return list(range(first, last + 1))
    return [int(seed) for seed in text.split(",")]


def mlp(inputs: int, outputs: int, hidden: int = 256) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden), nn.LeakyReLU(), nn.Linear(hidden, outputs)
    )


class ReferenceVAE(nn.Module):
    def __init__(self, input_scale: float, latent_dim: int = 2, pixels: int = 64, levels: int = 17):
        super().__init__()
        self.input_scale, self.latent_dim, self.pixels, self.levels = input_scale, latent_dim, pixels, levels
        self.encoder, self.decoder = mlp(pixels, 2 * latent_dim), mlp(latent_dim, pixels * levels)

    def log_weights(self, x: torch.Tensor, samples: int) -> torch.Tensor:
        """(samples, batch) log p(x|z) + log p(z) - log q(z|x) at z ~ q(z|x)."""
        mu, logvar = self.encoder(x / self.input_scale).chunk(2, dim=-1)
        std = torch.exp(0.5 * logvar)
        eps = torch.randn((samples, *mu.shape))
        z = mu + std * eps
        log_q = (-0.5 * eps**2 - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_p = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(-1)
        logits = self.decoder(z).unflatten(-1, (self.pixels, self.levels)).log_softmax(-1)
        log_px = logits.gather(-1, x.long().expand(samples, -1, -1).unsqueeze(-1)).squeeze(-1).sum(-1)
        return log_px + log_p - log_q

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return -self.log_weights(x, 1).mean()

    @torch.no_grad()
    def nll(self, x: torch.Tensor, samples: int, chunk: int = 100) -> float:
        """Mean over x of -log (1/S) sum_s w_s."""
        weights = torch.cat([self.log_weights(x, min(chunk, samples - s)) for s in range(0, samples, chunk)])
        return float(-(torch.logsumexp(weights, 0) - math.log(samples)).mean())


def train(seed: int, input_scale: float, samples: int) -> dict[str, float]:
    data = torch.as_tensor(load_digits().data, dtype=torch.float32)
    train_x, val_x, test_x = data[:1000], data[1000:1350], data[1350:]
    torch.manual_seed(seed)
    model = ReferenceVAE(input_scale)
    optimizer = torch.optim.Adamax(model.parameters(), lr=1e-3)
    best, best_state, best_epoch, started = math.inf, None, -1, time.time()
    for epoch in range(1000):
        model.train()
        for batch in torch.randperm(len(train_x)).split(64):
            optimizer.zero_grad()
            model.loss(train_x[batch]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val = float(model.loss(val_x))
        if val < best:
            best, best_state, best_epoch = val, copy.deepcopy(model.state_dict()), epoch
        elif epoch - best_epoch >= 20:
            break
    model.load_state_dict(best_state)
    return {
        "seed": seed,
        "nll": model.nll(test_x, samples),
        "best_epoch": best_epoch + 1,
        "seconds": time.time() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0-9", help="e.g. 0-9 or 1,2,3")
    parser.add_argument("--input-scale", type=float, default=1.0, help="the encoder's input is x / this")
    parser.add_argument("--samples", type=int, default=1000, help="S importance samples per test digit")
    parser.add_argument("--json", help="write the per-seed results here")
    args = parser.parse_args()
    results = []
    for seed in parse_seeds(args.seeds):
        results.append(train(seed, args.input_scale, args.samples))
        print(json.dumps(results[-1]), flush=True)
    nll = [result["nll"] for result in results]
    spread = statistics.stdev(nll) if len(nll) > 1 else 0.0
    print(
        f"input_scale={args.input_scale:g}: test NLL {statistics.fmean(nll):.2f} ± {spread:.2f} over {len(nll)} seeds"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"input_scale": args.input_scale, "samples": args.samples, "runs": results}, handle, indent=1)


if __name__ == "__main__":
    main()
