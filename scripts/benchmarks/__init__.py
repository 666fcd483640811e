"""The modes of `python scripts/bench.py`: paper, everyday and figures, and what they share."""

PRIORS = ["standard", "mog", "vamp", "gtm", "gtm_vamp", "flow"]  # the paper mode's, all by default
