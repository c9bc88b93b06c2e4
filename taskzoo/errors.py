"""Errors that taskzoo reports to the user as one clear line instead of a traceback."""


class TaskzooError(ValueError):
    """A problem with the user's input: a configuration value, a data file or a run directory."""


class ConfigError(TaskzooError):
    """A configuration value that is out of range or inconsistent with another one."""


class DataError(TaskzooError):
    """A data source that is missing, empty, malformed or unavailable offline."""
