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

Every error has a stable ``code`` (``record_not_found``, ``query_timeout``, ...) for scripts to branch on, and
``to_dict()`` (code, type, message and the error's own fields), which the CLI prints with ``--format json``.
A code never changes once released; a new error class gets a new code.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ToolkitError(Exception):
    """Base of every error the toolkit raises on purpose."""

    code: ClassVar[str] = "toolkit_error"

    def to_dict(self) -> dict[str, Any]:
        """``{"code", "type", "message"}`` plus the error's own fields (a not-found error's entity and
        identifier), JSON-ready."""
        data: dict[str, Any] = {"code": self.code, "type": type(self).__name__, "message": str(self)}
        for name, value in vars(self).items():
            if not name.startswith("_"):
                data[name] = value if isinstance(value, str | int | float | bool | None) else repr(value)
        return data


class ConfigurationError(ToolkitError):
    """The settings cannot work as given."""

    code: ClassVar[str] = "configuration_error"


class ValidationError(ToolkitError, ValueError):
    """An argument is out of range or malformed."""

    code: ClassVar[str] = "validation_error"


class InvalidPathError(ValidationError):
    """A path or run id that is empty, absolute, or climbs out of its folder."""

    code: ClassVar[str] = "invalid_path"


class RecordNotFoundError(ToolkitError, LookupError):
    """No record of this kind has this identifier."""

    code: ClassVar[str] = "record_not_found"

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

    code: ClassVar[str] = "file_not_accessible"


class ClientClosedError(ToolkitError):
    """The client was closed; make a new one."""

    code: ClassVar[str] = "client_closed"


class DatabaseError(ToolkitError):
    """Base of database failures."""

    code: ClassVar[str] = "database_error"


class DatabaseConnectionError(DatabaseError):
    """The database cannot be opened (missing, unreadable, corrupt, or not a database)."""

    code: ClassVar[str] = "database_unavailable"


class DatabaseQueryError(DatabaseError):
    """The database rejected a query."""

    code: ClassVar[str] = "query_failed"


class QueryTimeoutError(DatabaseQueryError):
    """A query ran past the query timeout and was interrupted."""

    code: ClassVar[str] = "query_timeout"


class ReadOnlyError(DatabaseQueryError):
    """A write was attempted; the toolkit opens the pipeline's databases read-only."""

    code: ClassVar[str] = "read_only"


class NotesWriteError(DatabaseError):
    """The notes database could not be written: nothing of the write happened."""

    code: ClassVar[str] = "notes_write_failed"


class PrivilegedRoleWarning(UserWarning):
    """Connected to PostgreSQL as a role that could write, because the caller passed allow_privileged."""


class NotesUnavailableWarning(UserWarning):
    """The notes database is missing or unreadable: annotation columns are NA (read calls still answer)."""
