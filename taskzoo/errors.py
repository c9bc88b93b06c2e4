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
