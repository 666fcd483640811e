"""The errors that end a command with one line (`error: ...`), in a module that imports nothing
heavy, so that the commands can catch them without importing torch or Lightning first.

Every message names the key, file or directory at fault and what is allowed instead.
"""

__all__ = [
    "ConfigError",
    "DataFormatError",
    "NonFiniteLossError",
    "PosthocError",
    "ResumeError",
    "RunDirError",
    "VaelabError",
    "WriteError",
]


class VaelabError(Exception):
    """An error the commands report as one line and a non-zero exit status, without a traceback."""


class ConfigError(VaelabError, ValueError):
    """A config value is out of range or not one of the allowed choices."""


class DataFormatError(ConfigError):
    """A data file is missing or is not in the format its reader expects."""


class NonFiniteLossError(VaelabError, RuntimeError):
    """The training loss became NaN or infinite."""


class RunDirError(VaelabError, ValueError):
    """A run directory, its config or a checkpoint is missing or unusable."""


class ResumeError(RunDirError):
    """`resume=` names no resumable run, or an override would change the run."""


class PosthocError(ConfigError):
    """A post-hoc fit cannot start: not a run, an unknown prior or key, an incompatible encoder."""


class WriteError(VaelabError, OSError):
    """A file could not be written (a full disk, no permission); the message names it."""

    @classmethod
    def of(cls, path, error: OSError) -> "WriteError":
        """`could not write <path>: <reason>`, keeping the OSError's errno."""
        written = cls(f"could not write {path}: {error.strerror or error}")
        written.errno, written.filename = error.errno, str(path)
        return written

    def __str__(self) -> str:  # the message alone, not OSError's "[Errno n] ...: 'file'"
        return str(self.args[0]) if self.args else ""
