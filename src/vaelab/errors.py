"""The errors that end a run with one line (`error: ...`), in a module that imports nothing heavy,
so that `train.py` can catch them without importing torch or Lightning first."""


class ConfigError(ValueError):
    """A config value is out of range or not one of the allowed choices."""


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""
