"""The notes database on PostgreSQL, for a team: serializable transactions retried on a serialization
failure, the schema created (under an advisory lock) by the first write."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

import asyncpg
import pandas as pd

from ..db.postgres import redacted
from ..errors import DatabaseConnectionError, NotesWriteError, ValidationError
from .model import NoteEvent, events_frame
from .query import MAX_EVENTS, EventQuery
from .schema import COLUMNS, POSTGRES_MIGRATIONS, RECORD_VERSION, VERSION, pending

RETRIES = 8
_LOCK = 0x636F6E74696D67  # pg_advisory_xact_lock key of schema changes ("contimg")
_INSERT = (
    f"INSERT INTO events ({COLUMNS}) SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::int[], "
    "$4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[]) "
    "ON CONFLICT (event_id) DO NOTHING"
)
# Two first writers may race to create the schema; the loser retries and finds it made.
_RETRYABLE = (
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.UniqueViolationError,
    asyncpg.DuplicateTableError,
    asyncpg.DuplicateObjectError,
    asyncpg.DuplicateFunctionError,
)


def _columns(events: Sequence[NoteEvent]) -> list[list[Any]]:
    return [
        [e.event_id for e in events],
        [e.created_at for e in events],
        [e.ordinal for e in events],
        [e.author for e in events],
        [e.target_kind for e in events],
        [e.target for e in events],
        [e.action for e in events],
        [e.text for e in events],
        [e.tag for e in events],
        [e.grade for e in events],
        [e.label for e in events],
    ]


async def _version(conn: asyncpg.Connection) -> int:
    if await conn.fetchval("SELECT to_regclass('notes_meta')") is None:
        foreign = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() LIMIT 5"
        )
        if foreign:
            names = ", ".join(r[0] for r in foreign)
            raise NotesWriteError(
                f"this database is not a notes database (it holds the tables {names}); give the notes a "
                "database of their own"
            )
        return 0
    value = await conn.fetchval("SELECT value FROM notes_meta WHERE key = 'schema_version'")
    return int(value or 0)


class PostgresNotesStore:
    dialect = "postgresql"

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    @property
    def location(self) -> str:
        return redacted(self.url)

    async def _get_pool(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(
                        self.url, min_size=0, max_size=4, timeout=self.timeout,
                        server_settings={"application_name": "contimg-toolkit notes",
                                         "statement_timeout": str(int(self.timeout * 1000))},
                    )  # fmt: skip
                except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                    raise DatabaseConnectionError(
                        f"the notes database at {self.location} cannot be reached: {exc}"
                    ) from exc
            return self._pool

    async def append(self, events: Sequence[NoteEvent]) -> int:
        try:
            pool = await self._get_pool()
        except DatabaseConnectionError as exc:
            raise NotesWriteError(f"{exc}; nothing was written") from exc.__cause__
        columns = _columns(events)
        for attempt in range(RETRIES):
            try:
                async with pool.acquire() as conn, conn.transaction(isolation="serializable"):
                    await self._migrate(conn)
                    status = await conn.execute(_INSERT, *columns)
                    return int(status.rsplit(" ", 1)[-1])
            except _RETRYABLE:
                if attempt == RETRIES - 1:
                    raise NotesWriteError(
                        f"the notes database at {self.location} kept refusing the transaction as a "
                        f"serialization conflict ({RETRIES} tries); nothing was written: try again"
                    ) from None
                await asyncio.sleep(random.uniform(0.005, 0.05) * 2**attempt)
            except asyncpg.InsufficientPrivilegeError as exc:
                raise NotesWriteError(
                    f"the role of {self.location} may not write the notes tables ({exc}); nothing was written"
                ) from exc
            except (asyncpg.PostgresError, OSError) as exc:
                raise NotesWriteError(
                    f"writing the notes database at {self.location} failed ({exc}); nothing was written"
                ) from exc
        raise AssertionError("unreachable")

    async def _migrate(self, conn: asyncpg.Connection) -> None:
        if await conn.fetchval("SELECT to_regclass('notes_meta')") is not None:
            version = int(
                await conn.fetchval("SELECT value FROM notes_meta WHERE key = 'schema_version'") or 0
            )
            if version == VERSION:
                return
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        for statement in pending(await _version(conn), POSTGRES_MIGRATIONS):
            if statement is RECORD_VERSION:
                await conn.execute(statement.replace("?", "$1"), str(VERSION))
            else:
                await conn.execute(statement)

    async def read(self, query: EventQuery) -> pd.DataFrame | None:
        pool = await self._get_pool()
        sql, params = query.sql("postgresql")
        try:
            async with pool.acquire() as conn:
                if await conn.fetchval("SELECT to_regclass('events')") is None:
                    return events_frame([])  # the database is there; nobody has written a note yet
                rows = await conn.fetch(f"{sql} LIMIT {MAX_EVENTS + 1}", *params)
        except (asyncpg.PostgresError, OSError) as exc:
            raise DatabaseConnectionError(
                f"cannot read the notes database at {self.location}: {exc}"
            ) from exc
        if len(rows) > MAX_EVENTS:
            raise ValidationError(
                f"more than {MAX_EVENTS:,} annotation events match; narrow the read (kind, target, since)"
            )
        return events_frame([tuple(r) for r in rows])

    async def version(self) -> int | None:
        pool = await self._get_pool()
        try:
            async with pool.acquire() as conn:
                if await conn.fetchval("SELECT to_regclass('events')") is None:
                    return 0
                return int(await conn.fetchval("SELECT COALESCE(MAX(seq), 0) FROM events"))
        except (asyncpg.PostgresError, OSError) as exc:
            raise DatabaseConnectionError(
                f"cannot read the notes database at {self.location}: {exc}"
            ) from exc

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
