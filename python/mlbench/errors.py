"""Errors the CLI reports as one line (exit code 2) instead of a traceback."""


class UsageError(Exception):
    """Bad input from the user: a config, a dataset or a command-line value."""


class DatasetError(UsageError):
    """A dataset that is missing, incomplete or fails its checksum."""


def one_line(message: object) -> str:
    """The message on one line whatever it quotes: control characters are written as escapes, as
    Rust's bench_core::error::one_line writes them (a key holding a newline, say)."""
    return "".join(ch.encode("unicode_escape").decode() if ch.isprintable() is False and ch != " " else ch
                   for ch in str(message))
