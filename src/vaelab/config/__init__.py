"""Validation of a composed config, once, before any data is read or anything is built: every
error is one line naming the key, the value and what is allowed (`check_config`)."""

from vaelab.config.check import check_config

__all__ = ["check_config"]
