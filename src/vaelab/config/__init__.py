"""Validation of a composed config, once, before any data is read or anything is built: every
error is one line naming the key, the value and what is allowed (`check_config`); before it, the
dataset keys one's own data decide are read from the data (`complete_dataset`)."""

from vaelab.config.check import check_config
from vaelab.config.complete import complete_dataset

__all__ = ["check_config", "complete_dataset"]
