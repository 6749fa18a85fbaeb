"""User-facing errors. Each message says what was wrong and how to fix it.

The CLI prints these without a traceback and exits with status 2.
"""


class SurrogateError(Exception):
    """Base class for every error caused by user input."""


class ConfigError(SurrogateError, ValueError):
    """An invalid hyperparameter or option."""


class EnvNotFoundError(SurrogateError, KeyError):
    """An environment id that no backend knows."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RunDirError(SurrogateError):
    """A run directory that is missing, incomplete, or would be overwritten."""


class CheckpointError(SurrogateError):
    """A checkpoint that is missing, corrupt, or does not match the config."""
