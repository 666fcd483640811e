"""Make the documentation's example pictures: train a VampPrior VAE with latent_dim 2 on the bundled digits
(pseudo-inputs initialised from training images, early stopping as configured) and copy the
run's final figures to docs/.

    python scripts/make_example_figure.py                     # about 20 s on 2 CPU cores
    python scripts/make_example_figure.py trainer.max_epochs=50   # extra Hydra overrides

The run itself is kept in outputs/runs/example_vamp/ (TensorBoard logs included).
"""

from __future__ import annotations

import shutil
import sys

from hydra import compose, initialize_config_dir

import vaelab
from vaelab.rundir import CHECKOUT as ROOT
from vaelab.rundir import conf_dir

RUN_DIR = ROOT / "outputs" / "runs" / "example_vamp"
PICTURES = {
    "latent.png": "latent_vamp.png",
    "samples.png": "samples_vamp.png",
    "pseudo_inputs.png": "pseudo_inputs_vamp.png",
}


def main(overrides: list[str]) -> None:
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "prior=vamp",
                "prior.init=data",
                "latent_dim=2",
                "seed=42",
                "trainer.max_epochs=300",
                "trainer.enable_progress_bar=false",
                "eval.num_samples=100",
                f"run_dir={RUN_DIR}",
                *overrides,
            ],
        )
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    vaelab.run(cfg)
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    for source, target in PICTURES.items():
        shutil.copyfile(RUN_DIR / source, docs / target)
        print(f"{RUN_DIR / source} → {docs / target}")


if __name__ == "__main__":
    main(sys.argv[1:])
