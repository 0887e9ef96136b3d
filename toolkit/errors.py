"""The toolkit's one exception tree.

    ToolkitError
    ├── ConfigurationError            settings that cannot work (no products database configured, ...)
    ├── ValidationError (ValueError)  bad arguments: negative limit, unparseable date, unknown column
    │   └── InvalidPathError          a run id or path that tries to leave its folder
    ├── RecordNotFoundError (LookupError)   unknown id, path or run id; carries entity and identifier
    ├── FileNotAccessibleError        a file that is missing, unreadable or outside the allowed folders
    ├── ClientClosedError             a call on a client after aclose()
    └── DatabaseError
        ├── DatabaseConnectionError   missing, unreadable, corrupt or not-a-database files
        ├── DatabaseQueryError        the database rejected a query
        │   ├── QueryTimeoutError     interrupted at the query timeout
        │   └── ReadOnlyError         a write attempted on a read-only connection
        └── NotesWriteError           the notes database cannot be written (folder, permissions, busy, not ours)

Warnings: ``PrivilegedRoleWarning`` (connected to PostgreSQL as a role that could write, by allow_privileged);
``NotesUnavailableWarning`` (read calls went on without annotations: the notes database is missing or
unreadable; once per client).

Driver exceptions never leave the toolkit bare: they are translated at the backend boundary and kept as
``__cause__``.
"""

from __future__ import annotations


class ToolkitError(Exception):
    """Base of every error the toolkit raises on purpose."""


class ConfigurationError(ToolkitError):
    """The settings cannot work as given."""


class ValidationError(ToolkitError, ValueError):
    """An argument is out of range or malformed."""


class InvalidPathError(ValidationError):
    """A path or run id that is empty, absolute, or climbs out of its folder."""


class RecordNotFoundError(ToolkitError, LookupError):
    """No record of this kind has this identifier."""

    def __init__(self, entity: str, identifier: object, hint: str | None = None) -> None:
        self.entity = entity
        self.identifier = identifier
        message = f"no {entity} with identifier {identifier!r}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)

    def __reduce__(self) -> tuple[type[RecordNotFoundError], tuple[str, object]]:
        return (type(self), (self.entity, self.identifier))


class FileNotAccessibleError(ToolkitError):
    """A file is missing, unreadable, or lies outside the folders the toolkit may read."""


class ClientClosedError(ToolkitError):
    """The client was closed; make a new one."""


class DatabaseError(ToolkitError):
    """Base of database failures."""


class DatabaseConnectionError(DatabaseError):
    """The database cannot be opened (missing, unreadable, corrupt, or not a database)."""


class DatabaseQueryError(DatabaseError):
    """The database rejected a query."""


class QueryTimeoutError(DatabaseQueryError):
    """A query ran past the query timeout and was interrupted."""


class ReadOnlyError(DatabaseQueryError):
    """A write was attempted; the toolkit opens the pipeline's databases read-only."""


class NotesWriteError(DatabaseError):
    """The notes database could not be written: nothing of the write happened."""


class PrivilegedRoleWarning(UserWarning):
    """Connected to PostgreSQL as a role that could write, because the caller passed allow_privileged."""


class NotesUnavailableWarning(UserWarning):
    """The notes database is missing or unreadable: annotation columns are NA (read calls still answer)."""
