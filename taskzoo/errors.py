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


@contextlib.contextmanager
def one_line_errors():
    """Reports a TaskzooError as one line on standard error and exits with code 2.

    With HYDRA_FULL_ERROR=1 the error is raised as usual, with its traceback.
    """
    try:
        yield
    except TaskzooError as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(2)
