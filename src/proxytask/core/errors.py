"""The one exception hierarchy of proxytask, with messages that teach."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CorruptFileError",
    "ExecutorError",
    "NonFiniteMetricError",
    "ProxyTaskError",
    "SearchSpaceError",
    "StorageError",
    "UsageError",
]


class ProxyTaskError(Exception):
    """Base class of every error proxytask raises on purpose.

    Messages follow one pattern: ``<what> must be <rule>, got <value>. <fix>``.
    """


class UsageError(ProxyTaskError, ValueError):
    """Bad input from the user: a flag, a file, an argument. The CLI exits with 2."""


class ConfigError(UsageError):
    """A configuration file or a config key is invalid."""


class SearchSpaceError(UsageError):
    """A search space cannot be imported, called, or its result cannot be stored as JSON."""


class StorageError(ProxyTaskError):
    """A file could not be read or written (missing bucket, corrupt JSON, permissions)."""


class CorruptFileError(StorageError):
    """A file was read but its content is not what proxytask wrote (torn, edited, not JSON)."""


class ExecutorError(ProxyTaskError):
    """An executor could not launch, track or stop a trial."""


class NonFiniteMetricError(ProxyTaskError, ValueError):
    """A trainer reported NaN or infinity; the trial is recorded as failed with cause ``nan``."""


def describe(value: object, limit: int = 80) -> str:
    """Return ``repr(value)`` cut to ``limit`` characters, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
