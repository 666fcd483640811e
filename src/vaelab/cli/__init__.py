"""The installed commands: `vaelab-train` (also `python train.py`), `vaelab-evaluate`,
`vaelab-compare` and `vaelab-fit-prior`, and the sweep jobs and report around `vaelab-train -m`."""
