"""The test set of a run: `evaluate_test_set` evaluates a trained model on its datamodule's test
split with the run's `eval` settings, as at the end of training and in `vaelab-evaluate`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from vaelab.evaluation.metrics import evaluate_model
from vaelab.evaluation.quality import evaluate_quality

__all__ = ["evaluate_test_set"]


def evaluate_test_set(model, datamodule, cfg: DictConfig, run_dir: str | Path | None = None) -> dict[str, Any]:
    """`evaluate_model` on the whole test split of `datamodule`, in the test loader's batches, with
    `cfg.eval` and `cfg.seed`; on the GPU when the trainer config asks for one and there is one.
    Then the quality of the model's samples (`vaelab.evaluation.quality`, `eval.quality`), with its figure
    in `run_dir` when given."""
    datamodule.setup("test")
    batches = [batch[0] for batch in datamodule.test_dataloader()]
    use_gpu = cfg.trainer.get("accelerator") in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    model.to("cuda" if use_gpu else "cpu")
    settings = OmegaConf.to_container(cfg.get("eval") or {}, resolve=True)  # older runs: the defaults
    quality = settings.pop("quality", None)  # the quality's settings, not evaluate_model's
    settings.pop("test", None)  # whether a training evaluates at all (vaelab.training.fit), not how
    x = torch.cat(batches)
    results = evaluate_model(model, x, seed=cfg.seed, batch_size=len(batches[0]), **settings)
    return evaluate_quality(
        results, model, x.to(next(model.parameters()).device), datamodule, quality, cfg.seed, run_dir
    )
