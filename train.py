"""Train one VAE: `python train.py prior=vamp latent_dim=2`; sweep: `python train.py -m prior=...`.

The same command as the installed `vaelab-train` (`vaelab.cli.train`), for a checkout.
"""

from vaelab.cli.train import main

if __name__ == "__main__":
    main()
