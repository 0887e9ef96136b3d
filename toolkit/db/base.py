"""The seam between the domains (which build SQL) and a database (which runs it).

A backend runs each query with one crossing to its worker thread, bounds it by the query timeout, and
translates driver errors into :mod:`toolkit.errors`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import pandas as pd

from ..schema import Kind

T = TypeVar("T")
Params = Sequence[Any]
# Work on a fetched frame that belongs off the event loop (derived columns); runs in the backend's worker.
PostProcess = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class Dialect:
    """The few SQL spellings that differ between the databases the toolkit reads.

    Everything else the domains write is plain SQL both understand (``?`` placeholders are translated by
    the PostgreSQL backend). JSON is the main difference: SQLite keeps it as text (``json_*`` functions,
    and a blob can be invalid), PostgreSQL as ``json`` (operators; ``contimg migrate`` stores a blob that
    is not a JSON object as a JSON string, so "not an object" is how a broken blob shows there).
    """

    name: str

    def json_number(self, column: str, key: str) -> str:
        """The number under ``key`` in a JSON object column, NULL when absent, not a number or not JSON."""
        if self.name == "postgresql":
            return f"CASE WHEN json_typeof({column} -> '{key}') = 'number' THEN ({column} ->> '{key}')::float8 END"
        path = f"$.{key}"
        return (
            f"CASE WHEN json_valid({column}) AND json_type({column}, '{path}') IN ('real', 'integer') "
            f"THEN json_extract({column}, '{path}') END"
        )

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """SQL and params for ``column IN values`` that work for any number of values: one parameter (a
        JSON array in SQLite, an array in PostgreSQL) instead of one placeholder per value."""
        if self.name == "postgresql":
            return f"{column} = ANY(?)", [list(values)]
        return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(list(values))]

    def json_broken(self, column: str) -> str:
        """True where the column holds something that is not a readable JSON object."""
        if self.name == "postgresql":
            return f"({column} IS NOT NULL AND json_typeof({column}) <> 'object')"
        return f"({column} IS NOT NULL AND NOT json_valid({column}))"


@dataclass(frozen=True)
class Probe:
    """What a health check learned of a database without opening a client on it (``services.status``)."""

    reachable: bool
    error: str | None = None
    refused: bool = False  # a server that answered "connection refused": stopped, not broken
    size_bytes: int | None = None
    wal_bytes: int | None = None
    modified: float | None = None  # unix seconds of the last change (file or WAL)


SQLITE = Dialect("sqlite")
POSTGRESQL = Dialect("postgresql")


@dataclass(frozen=True)
class Catalog:
    """Which tables and columns a database has (read once when the backend opens), and its SQL dialect."""

    tables: Mapping[str, frozenset[str]]
    dialect: Dialect = SQLITE
    # (table, column) pairs stored as timestamps rather than the pipeline's unix seconds (a PostgreSQL site
    # with its own schema): filters bind unix seconds through to_timestamp() there.
    timestamps: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def from_columns(cls, rows: Iterable[Sequence[Any]], dialect: Dialect = SQLITE) -> Catalog:
        """A catalog from ``(table, column)`` rows, or ``(table, column, data_type)`` where the database
        reports types (a ``timestamp...`` type marks a column stored as a timestamp)."""
        tables: dict[str, set[str]] = {}
        stamps: set[tuple[str, str]] = set()
        for row in rows:
            table, column = str(row[0]), str(row[1])
            tables.setdefault(table, set()).add(column)
            if len(row) > 2 and str(row[2]).startswith("timestamp"):
                stamps.add((table, column))
        return cls({t: frozenset(c) for t, c in tables.items()}, dialect, frozenset(stamps))

    def missing(self, required: Iterable[str]) -> list[str]:
        """The tables of ``required`` this database does not have."""
        return [t for t in required if not self.has_table(t)]

    def time_placeholder(self, table: str, column: str) -> str:
        """The placeholder for a unix-seconds value compared with ``table.column``."""
        return "to_timestamp(?)" if (table, column) in self.timestamps else "?"

    def has_table(self, table: str) -> bool:
        return table in self.tables

    def columns(self, table: str) -> frozenset[str]:
        return self.tables.get(table, frozenset())


class Backend(Protocol):
    label: str
    catalog: Catalog
    path: Any  # the file, or the redacted URL: for messages

    async def fetch_rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Small queries: the rows as tuples, in one crossing."""
        ...

    async def fetch_small_frame(
        self,
        sql: str,
        params: Params,
        columns: Sequence[str],
        kinds: Mapping[str, Kind],
        absent: Collection[str] = (),
    ) -> pd.DataFrame:
        """A small result (a light curve) as rows shaped by :func:`frames.from_rows` where they were read:
        one crossing on SQLite; ``absent`` columns come out all missing."""
        ...

    async def fetch_frame(
        self, sql: str, params: Params, kinds: Mapping[str, Kind], post: PostProcess | None = None
    ) -> pd.DataFrame:
        """Bulk queries: a shaped DataFrame (Arrow where possible), shaped off the event loop."""
        ...

    async def fetch_frame_parts(
        self, parts: Sequence[tuple[str, Params]], kinds: Mapping[str, Kind], post: PostProcess | None = None
    ) -> pd.DataFrame:
        """Several queries read at once, concatenated in order: one frame, as if from one query."""
        ...

    async def data_version(self) -> int:
        """A number that changes whenever the database changes (for the result cache)."""
        ...

    async def fetch_user_frame(self, sql: str, params: Params, max_rows: int) -> pd.DataFrame:
        """User SQL: one read-only statement, interruptible at the timeout; more than ``max_rows`` rows is a
        ``ValidationError``."""
        ...

    async def compute(self, fn: Callable[..., T], *args: Any) -> T:
        """Pure work (pandas over a whole result) off the event loop, in this backend's worker threads."""
        ...

    async def aclose(self) -> None: ...
