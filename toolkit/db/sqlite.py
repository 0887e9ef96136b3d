"""Read-only SQLite backend: an aiosqlite pool for small queries and user SQL, ADBC (Arrow) for bulk frames.

Why two drivers: building a 1M-row frame from Python tuples costs ~5 s and holds the GIL (the event loop
stalls); ADBC hands back Arrow columns in ~1.4 s. But ADBC's SQLite driver cannot be cancelled, so it only
runs the bounded queries the toolkit builds itself; user SQL goes through aiosqlite, whose queries
``sqlite3_interrupt`` stops at the timeout.

Every connection is opened ``file:...?mode=ro`` (never ``immutable=1``: the pipeline writes while we read),
with a busy timeout so a writer's lock is waited out rather than surfaced as "database is locked".
aiosqlite connections also carry an authorizer that refuses anything but reads, so even a cunning
``sql()`` statement (``ATTACH``, ``VACUUM INTO``) cannot write a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import sqlite3
import threading
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import adbc_driver_sqlite as adbc_sqlite
import adbc_driver_sqlite.dbapi as adbc
import aiosqlite
import pandas as pd

from .. import frames
from ..errors import (
    ClientClosedError,
    DatabaseConnectionError,
    DatabaseQueryError,
    QueryTimeoutError,
    ReadOnlyError,
)
from ..schema import Kind
from .base import Catalog, Params, PostProcess

T = TypeVar("T")
_BATCH_ROWS = "65536"
# Pages kept per connection (negative: KiB). SQLite's 2 MiB default re-reads the indexes of a 10k-row join.
_CACHE_SIZE = -32768

_CATALOG_SQL = (
    "SELECT m.name, p.name FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p "
    "WHERE m.type IN ('table', 'view')"
)

# Pragmas that only describe the database; any pragma that is not an assignment is also a read.
_INTROSPECTION_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "database_list",
        "function_list",
        "compile_options",
    }
)
_ALLOWED_ACTIONS = frozenset(
    {
        sqlite3.SQLITE_SELECT,
        sqlite3.SQLITE_READ,
        sqlite3.SQLITE_FUNCTION,
        sqlite3.SQLITE_RECURSIVE,
        sqlite3.SQLITE_TRANSACTION,
    }
)


def _read_only_authorizer(
    action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: str | None
) -> int:
    if action in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and (arg2 is None or (arg1 or "").lower() in _INTROSPECTION_PRAGMAS):
        return sqlite3.SQLITE_OK
    # SQLite reports loading the schema as an UPDATE of sqlite_master; mode=ro stops any real write to it.
    if action == sqlite3.SQLITE_UPDATE and arg1 in ("sqlite_master", "sqlite_temp_master"):
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def read_only_uri(path: Path) -> str:
    return "file:" + urllib.parse.quote(str(path.resolve()), safe="/") + "?mode=ro"


class _Ticket:
    """Tells a worker that its caller gave up (timeout or cancel), so its connection must not be reused."""

    __slots__ = ("abandoned",)

    def __init__(self) -> None:
        self.abandoned = False


class SQLiteBackend:
    """One SQLite file, read-only. Make it with :meth:`open`; close it with :meth:`aclose`."""

    def __init__(self, path: Path, *, label: str, origin: str, query_timeout: float, pool_size: int) -> None:
        self.path = path
        self.label = label
        self.origin = origin
        self.timeout = query_timeout
        self.catalog = Catalog({})
        self._uri = read_only_uri(path)
        self._pool_size = pool_size
        self._idle: list[aiosqlite.Connection] = []
        self._all: list[aiosqlite.Connection] = []
        self._slots = asyncio.Semaphore(pool_size)
        # LIFO: the connection used last has the warmest page cache.
        self._adbc_idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._adbc_lock = threading.Lock()
        self._adbc_all: list[Any] = []
        self._executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix=f"contimg-{label}")
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._closed = False
        self._version_conn: sqlite3.Connection | None = None
        self._version_lock = threading.Lock()

    # ----------------------------------------------------------------------------------- lifecycle
    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        label: str,
        origin: str,
        query_timeout: float,
        pool_size: int,
        required_tables: Iterable[str] = (),
    ) -> SQLiteBackend:
        """Open ``path`` read-only and read its catalog; never creates a file."""
        _check_file(path, label, origin)
        backend = cls(path, label=label, origin=origin, query_timeout=query_timeout, pool_size=pool_size)
        try:
            rows = await backend.fetch_rows(_CATALOG_SQL)
        except DatabaseQueryError as exc:
            await backend.aclose()
            raise DatabaseConnectionError(f"{label} {path} cannot be read as SQLite: {exc}") from exc
        except BaseException:
            await backend.aclose()
            raise
        tables: dict[str, set[str]] = {}
        for table, column in rows:
            tables.setdefault(table, set()).add(column)
        backend.catalog = Catalog({name: frozenset(cols) for name, cols in tables.items()})
        missing = [t for t in required_tables if not backend.catalog.has_table(t)]
        if missing:
            await backend.aclose()
            raise DatabaseConnectionError(
                f"{label} {path} has no {', '.join(missing)} table: is {origin} pointing at the right file?"
            )
        return backend

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        for conn in self._all:
            # A connection failing to close must not keep the others open.
            with contextlib.suppress(Exception):
                await conn.close()
        self._all.clear()
        self._idle.clear()
        # Workers are idle now (every future has settled), so this join is immediate.
        self._executor.shutdown(wait=True)
        with self._adbc_lock:
            for conn in self._adbc_all:
                with contextlib.suppress(Exception):
                    conn.close()
            self._adbc_all.clear()
        with self._version_lock:
            if self._version_conn is not None:
                self._version_conn.close()
                self._version_conn = None

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError(f"the {self.label} connection is closed; make a new client")

    # ------------------------------------------------------------------------------ aiosqlite path
    async def _acquire(self) -> aiosqlite.Connection:
        await self._slots.acquire()
        if self._idle:
            return self._idle.pop()
        try:
            conn = await self._connect()
        except BaseException:
            self._slots.release()
            raise
        self._all.append(conn)
        return conn

    async def _connect(self) -> aiosqlite.Connection:
        try:
            conn = await aiosqlite.connect(self._uri, uri=True, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise DatabaseConnectionError(f"{self.label} {self.path} cannot be opened: {exc}") from exc
        try:
            await conn.execute(f"PRAGMA cache_size = {_CACHE_SIZE}")
            await conn.set_authorizer(_read_only_authorizer)
        except BaseException as exc:
            # Close it, or its worker thread outlives the client (and blocks interpreter exit).
            with contextlib.suppress(Exception):
                await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise DatabaseConnectionError(f"{self.label} {self.path} cannot be read: {exc}") from exc
            raise
        return conn

    def _release(self, conn: aiosqlite.Connection) -> None:
        self._idle.append(conn)
        self._slots.release()

    async def _with_connection(self, sql: str, work: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run ``work`` on a pooled connection; interrupt it at the timeout or when the caller is cancelled."""
        self._check_open()
        conn = await self._acquire()
        task = asyncio.ensure_future(work(conn))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.shield(task)
        except TimeoutError:
            await self._settle_interrupted(conn, task)
            raise QueryTimeoutError(
                f"{self.label}: query interrupted after the {self.timeout:g} s query timeout "
                f"(raise query_timeout or narrow the query): {_brief(sql)}"
            ) from None
        except asyncio.CancelledError:
            await self._settle_interrupted(conn, task)
            raise
        except sqlite3.Error as exc:
            raise _translate(exc, self.label, sql) from exc
        finally:
            self._release(conn)

    @staticmethod
    async def _settle_interrupted(conn: aiosqlite.Connection, task: asyncio.Future[Any]) -> None:
        await conn.interrupt()
        # The statement stops at its next step; wait so the connection goes back to the pool idle.
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # mark retrieved: the interruption error is expected

    async def fetch_rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        async def work(conn: aiosqlite.Connection) -> list[tuple[Any, ...]]:
            return [tuple(row) for row in await conn.execute_fetchall(sql, tuple(params))]

        return await self._with_connection(sql, work)

    async def _fetch_with_names(self, sql: str, params: Params) -> tuple[list[str], list[tuple[Any, ...]]]:
        async def work(conn: aiosqlite.Connection) -> tuple[list[str], list[tuple[Any, ...]]]:
            async with conn.execute(sql, tuple(params)) as cursor:
                rows = await cursor.fetchall()
                names = [d[0] for d in cursor.description or ()]
            return names, [tuple(row) for row in rows]

        return await self._with_connection(sql, work)

    async def fetch_user_frame(self, sql: str, params: Params) -> pd.DataFrame:
        names, rows = await self._fetch_with_names(sql, params)
        return await self._in_worker(_user_frame, rows, names)

    # ---------------------------------------------------------------------------------- Arrow path
    async def fetch_frame(
        self, sql: str, params: Params, kinds: Mapping[str, Kind], post: PostProcess | None = None
    ) -> pd.DataFrame:
        return await self.fetch_frame_parts([(sql, params)], kinds, post)

    async def fetch_frame_parts(
        self, parts: Sequence[tuple[str, Params]], kinds: Mapping[str, Kind], post: PostProcess | None = None
    ) -> pd.DataFrame:
        self._check_open()
        ticket = _Ticket()
        # Each part on its own pooled connection at once: ADBC releases the GIL while SQLite steps, so two
        # halves of a long listing take ~70% of the time of one query on a 2-core machine.
        work = [
            self._in_worker(self._arrow_frame, sql, tuple(params), kinds, post, ticket)
            for sql, params in parts
        ]
        try:
            outcomes = await asyncio.gather(*work, return_exceptions=True)
        except asyncio.CancelledError:
            ticket.abandoned = True
            raise
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            if any(isinstance(f, QueryTimeoutError | asyncio.CancelledError) for f in failures):
                ticket.abandoned = True
            raise failures[0]
        shaped = [o for o in outcomes if isinstance(o, pd.DataFrame)]
        if len(shaped) < len(parts):
            # ADBC met a value of another type than the first rows promised: take the tuple path instead.
            shaped = [await self._tuple_path_frame(sql, params, kinds, post) for sql, params in parts]
        return shaped[0] if len(shaped) == 1 else pd.concat(shaped, ignore_index=True)

    async def _tuple_path_frame(
        self, sql: str, params: Params, kinds: Mapping[str, Kind], post: PostProcess | None
    ) -> pd.DataFrame:
        names, rows = await self._fetch_with_names(sql, params)
        return await self._in_worker(_rows_frame, rows, names, kinds, post)

    async def _in_worker(self, fn: Callable[..., T], *args: Any) -> T:
        """One crossing to this backend's worker threads, bounded by the query timeout."""
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        self._in_flight.add(future)
        future.add_done_callback(self._in_flight.discard)
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            raise QueryTimeoutError(
                f"{self.label}: bulk read took longer than the {self.timeout:g} s query timeout"
            ) from None

    def _adbc_connection(self) -> Any:
        try:
            return self._adbc_idle.get_nowait()
        except queue.Empty:
            pass
        # autocommit: without it the DB-API layer keeps a transaction open and a pooled connection goes on
        # reading an old snapshot while the pipeline writes (test_reads_succeed_while_another_process_writes).
        conn = adbc.connect(self._uri, autocommit=True)
        cursor = conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            cursor.execute(f"PRAGMA cache_size = {_CACHE_SIZE}")
        finally:
            cursor.close()
        with self._adbc_lock:
            self._adbc_all.append(conn)
        return conn

    def _arrow_frame(
        self,
        sql: str,
        params: tuple[Any, ...],
        kinds: Mapping[str, Kind],
        post: PostProcess | None,
        ticket: _Ticket,
    ) -> pd.DataFrame | None:
        conn = self._adbc_connection()
        try:
            cursor = conn.cursor()
            try:
                # Fewer, larger batches: less per-chunk overhead, and ADBC infers column types from more rows.
                cursor.adbc_statement.set_options(
                    **{adbc_sqlite.StatementOptions.BATCH_ROWS.value: _BATCH_ROWS}
                )
                cursor.execute(sql, params or None)
                table = cursor.fetch_arrow_table()
            finally:
                cursor.close()
        except Exception as exc:
            if "type mismatch" in str(exc).lower():
                return None
            raise _translate(exc, self.label, sql) from exc
        finally:
            if ticket.abandoned:
                self._discard_adbc(conn)
            else:
                self._adbc_idle.put(conn)
        frame = frames.arrow_to_frame(table, kinds)
        return frame if post is None else post(frame)

    def _discard_adbc(self, conn: Any) -> None:
        with self._adbc_lock:
            if conn in self._adbc_all:
                self._adbc_all.remove(conn)
        conn.close()

    # ------------------------------------------------------------------------------ change detection
    async def data_version(self) -> int:
        """``PRAGMA data_version`` on a connection kept for it: changes whenever another connection commits."""
        self._check_open()
        return await self._in_worker(self._read_data_version)

    def _read_data_version(self) -> int:
        with self._version_lock:
            if self._version_conn is None:
                self._version_conn = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
            return int(self._version_conn.execute("PRAGMA data_version").fetchone()[0])

    # ---------------------------------------------------------------------------------- SQL dialect
    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        # One JSON parameter instead of N placeholders: no limit on the number of values.
        return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(list(values))]


def _rows_frame(
    rows: list[tuple[Any, ...]], names: list[str], kinds: Mapping[str, Kind], post: PostProcess | None
) -> pd.DataFrame:
    frame = frames.from_rows(rows, names, kinds)
    return frame if post is None else post(frame)


def _user_frame(rows: list[tuple[Any, ...]], names: list[str]) -> pd.DataFrame:
    frame = frames.from_rows(rows, names, {})
    numeric = [n for n in names if pd.api.types.is_numeric_dtype(frame[n])]
    return frames.shape(frame, frames.time_kinds_by_name(numeric))


def _check_file(path: Path, label: str, origin: str) -> None:
    where = f"(set by {origin})"
    if not path.exists():
        raise DatabaseConnectionError(f"{label} {path} does not exist {where}")
    if path.is_dir():
        raise DatabaseConnectionError(f"{label} {path} is a directory, not a database file {where}")
    if not os.access(path, os.R_OK):
        raise DatabaseConnectionError(f"{label} {path} is not readable by this user {where}")


def _brief(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= 160 else text[:157] + "..."


def _translate(exc: BaseException, label: str, sql: str) -> Exception:
    message = str(exc)
    lowered = message.lower()
    if "readonly" in lowered or "read-only" in lowered or "authoriz" in lowered:
        return ReadOnlyError(
            f"{label} is opened read-only; the toolkit never writes to the pipeline's databases "
            f"({message}): {_brief(sql)}"
        )
    if "interrupted" in lowered:
        return QueryTimeoutError(f"{label}: query interrupted: {_brief(sql)}")
    if any(s in lowered for s in ("not a database", "malformed", "unable to open", "disk i/o error")):
        return DatabaseConnectionError(f"{label} cannot be read: {message}")
    return DatabaseQueryError(f"{label} rejected the query ({message}): {_brief(sql)}")
