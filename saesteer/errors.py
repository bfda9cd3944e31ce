"""The exception hierarchy. Every user-facing failure is a :class:`SaesteerError`.

The CLI turns these into a one-line message (``error: ...``) with no traceback; Python users catch the
same types. Messages say what was expected, what was found, and what to do.
"""

from __future__ import annotations


class SaesteerError(Exception):
    """Base class of every error saesteer raises on purpose."""


class ModelLoadError(SaesteerError):
    """A model could not be resolved or loaded (unknown name, offline and not cached, corrupt cache)."""


class SaeLoadError(SaesteerError):
    """An SAE could not be resolved or loaded."""


class HookError(SaesteerError):
    """A hook name is malformed or does not exist on the model."""


class DimensionMismatchError(SaesteerError):
    """Two objects that must agree on a width (model/SAE/vector) do not."""


class CorpusError(SaesteerError):
    """A corpus or condition is empty, unreadable, or misses a column."""


class IndexDbError(SaesteerError):
    """A DuckDB index problem. ``sql`` holds the statement that failed, if any."""

    def __init__(self, message: str, sql: str | None = None) -> None:
        super().__init__(message if sql is None else f"{message}\n  while running: {sql.strip()}")
        self.sql = sql


class SchemaVersionError(IndexDbError):
    """The database was written by a newer (or unknown) schema."""


class DatabaseLockedError(IndexDbError):
    """Another process holds the database for writing."""


class UnknownConditionError(SaesteerError):
    """A condition label is not in the index."""


class UnknownFeatureError(SaesteerError):
    """A feature id is out of range or not in the index."""


class EmptyResultError(SaesteerError):
    """A query or filter chain selected nothing; the message names the filter that emptied it."""


class SteeringVectorError(SaesteerError):
    """A steering vector is invalid for the model (width, layer, non-finite values) or a file is corrupt."""


class ExportFormatError(SaesteerError):
    """An export/import format is unknown or a file is not of the format it claims."""


class OutputPathError(SaesteerError):
    """An output path cannot be written as a file (it is a directory, or a parent is a file)."""
