"""Domain errors raised by the core and turned into messages at each boundary
(CLI one-line error, HTTP 4xx, lookupd TEMP)."""

from __future__ import annotations


class MrodError(Exception):
    """Base class: a message fit to show an operator as it is."""


class InvalidInput(MrodError):
    """A value was refused; ``field`` names it so forms can show the error beside it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(MrodError):
    pass


class Conflict(MrodError):
    """The change would duplicate something that exists."""


class InUse(MrodError):
    """The object is still referenced (a relay used by domains)."""


class ConfigError(MrodError):
    """The configuration file or environment is wrong; the message names the key."""


class DatabaseNotReady(MrodError):
    """The database is missing or its schema is older/newer than this code."""


class DatabaseUnreachable(DatabaseNotReady):
    """A (PostgreSQL) database server that cannot be reached now — refused, timed out, going
    down or starting up — as opposed to one that refuses this configuration (a wrong password,
    a database that does not exist): an outage to ride out, not a mistake to report and stop."""


class IntegrityViolation(MrodError):
    """A statement broke a constraint of the schema (NOT NULL, CHECK; the two below have their
    own classes); both engines' adapters raise it in place of their driver's error.
    ``constraint`` names what was broken as the engine names it (a column, an index)."""

    def __init__(self, message: str, constraint: str = "") -> None:
        super().__init__(message)
        self.constraint = constraint


class UniqueViolation(IntegrityViolation):
    """An INSERT/UPDATE would duplicate a unique key."""


class ForeignKeyViolation(IntegrityViolation):
    """An INSERT/UPDATE/DELETE would leave a reference to a row that does not exist."""


class NothingImported(MrodError):
    """An all-or-nothing import refused: the first problem by its line, how many more."""

    def __init__(self, line: int, why: str, problems: int) -> None:
        more = f" (and {problems - 1} more)" if problems > 1 else ""
        super().__init__(f"line {line}: {why}{more}; nothing was imported")
