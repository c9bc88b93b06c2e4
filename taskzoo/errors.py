"""Errors that taskzoo reports to the user as one clear line instead of a traceback."""

import contextlib
import os
import sys


class TaskzooError(ValueError):
    """A problem with the user's input: a configuration value, a data file or a run directory."""


class ConfigError(TaskzooError):
    """A configuration value that is out of range or inconsistent with another one."""


class DataError(TaskzooError):
    """A data source that is missing, empty, malformed or unavailable offline."""


class TrainingError(TaskzooError):
    """Training that stopped before its end: a stop signal or a non-finite loss."""

    def __init__(self, message, exit_code=2):
        super().__init__(message)
        self.exit_code = exit_code


def short_cause(error, limit=160):
    """The cause of a library's error in a few words: its last sentence, on one line.

    Decoders such as ffmpeg put their whole build configuration before the cause, which comes
    last ("... Error opening input files: Invalid data found when processing input").
    """
    text = " ".join(str(error).split())
    sentences = [sentence for sentence in text.split(". ") if sentence.strip()]
    cause = sentences[-1] if sentences else type(error).__name__
    return cause if len(cause) <= limit else cause[: limit - 3] + "..."


@contextlib.contextmanager
def one_line_errors():
    """Reports a TaskzooError as one line on standard error and exits with code 2 (or the
    error's own `exit_code`: 128 + the signal number for a run stopped by a signal).

    With HYDRA_FULL_ERROR=1 the error is raised as usual, with its traceback.
    """
    try:
        yield
    except TaskzooError as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(getattr(error, "exit_code", 2))
