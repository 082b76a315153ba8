"""Errors the CLI reports as one line (exit code 2) instead of a traceback."""


class UsageError(Exception):
    """Bad input from the user: a config, a dataset or a command-line value."""


class DatasetError(UsageError):
    """A dataset that is missing, incomplete or fails its checksum."""
