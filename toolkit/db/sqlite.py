"""Read-only SQLite backend: a pool of sqlite3 connections for small queries and user SQL, ADBC (Arrow) for
bulk frames.

Why two drivers: building a 1M-row frame from Python tuples costs ~5 s and holds the GIL (the event loop
stalls); ADBC hands back Arrow columns in ~1.4 s. ADBC's SQLite driver links its own copy of SQLite, and two
copies in one process are blind to each other's POSIX locks (stale answers while the pipeline writes), so ADBC
runs in reader processes of its own (:mod:`.sqlite_arrow`); this process reads the files only through
Python's ``sqlite3``. ADBC cannot be cancelled, so its reads are stopped by ending the reader process; user SQL
goes through Python's ``sqlite3``, whose queries ``sqlite3_interrupt`` stops at the timeout.

Each pooled connection lives in a thread of its own (:mod:`.connection_thread`): a small result is fetched and
shaped into its frame in one crossing, in the thread that made its rows.

Every connection is opened ``file:...?mode=ro`` (never ``immutable=1``: the pipeline writes while we read),
with a busy timeout so a writer's lock is waited out rather than surfaced as "database is locked".
The pooled connections also carry an authorizer that refuses anything but reads, so even a cunning
``sql()`` statement (``ATTACH``, ``VACUUM INTO``) cannot write a file, and no statement can open a
transaction (which would pin an old snapshot). Values are capped at ``MAX_VALUE_BYTES`` and ``printf``'s
widths at ``MAX_PRINTF_WIDTH``: one function call cannot be interrupted, so its size is bounded instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import sqlite3
import stat
import threading
import urllib.parse
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from .. import frames
from ..arguments import check_params
from ..errors import (
    ClientClosedError,
    DatabaseConnectionError,
    DatabaseQueryError,
    QueryTimeoutError,
    ReadOnlyError,
    ValidationError,
)
from ..schema import Kind
from .base import Catalog, Params, PostProcess, Probe
from .connection_thread import ConnectionThread
from .daemon import in_daemon_thread
from .sqlite_arrow import READERS, ReaderError, ReaderStopped, Ticket
from .statements import READ_PRAGMAS, READ_PRAGMAS_WITH_ARGUMENT

T = TypeVar("T")
log = logging.getLogger(__name__)

_BATCH_ROWS = 65536
# Pages kept per connection (negative: KiB). SQLite's 2 MiB default re-reads the indexes of a 10k-row join.
_CACHE_SIZE = -32768
# The largest string or blob one value may be (SQLite's default is 1 GB); far above anything the pipeline
# stores, small enough that one call of printf/zeroblob/replace cannot take a gigabyte.
MAX_VALUE_BYTES = 128 * 2**20
# printf's widths and precisions: SQLite pads one character at a time inside one uninterruptible call.
MAX_PRINTF_WIDTH = 1_000_000
# sql(): the most rows, and about the most bytes, one call returns (the caller's result lives in memory).
DEFAULT_MAX_ROWS = 1_000_000
MAX_RESULT_BYTES = 2 * 2**30
_FETCH_CHUNK = 5000

_CATALOG_SQL = (
    "SELECT m.name, p.name FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p "
    "WHERE m.type IN ('table', 'view')"
)

_ALLOWED_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)


def _read_only_authorizer(
    action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: str | None
) -> int:
    if action in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if name in READ_PRAGMAS and (arg2 is None or name in READ_PRAGMAS_WITH_ARGUMENT):
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY
    # SQLite reports loading the schema as an UPDATE of sqlite_master; mode=ro stops any real write to it.
    if action == sqlite3.SQLITE_UPDATE and arg1 in ("sqlite_master", "sqlite_temp_master"):
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


# One conversion of SQLite's printf: "%%", or flags, width, precision, length and type ("*" takes an argument).
_PRINTF_CONVERSION = re.compile(r"%(?:%|[-+ 0#,!]*(\d+|\*)?(?:\.(\d+|\*))?(?:ll|l)?[a-zA-Z])")


def printf_widths(fmt: str, args: Sequence[Any]) -> list[Any]:
    """The widths and precisions a printf call asks for, literal or taken from ``args`` (pure)."""
    sizes: list[Any] = []
    index = 0
    for match in _PRINTF_CONVERSION.finditer(fmt):
        if match.group(0) == "%%":
            continue
        for part in match.groups():
            if part == "*":
                sizes.append(args[index] if index < len(args) else 0)
                index += 1
            elif part is not None:
                sizes.append(part)
        index += 1  # the value converted
    return sizes


def _bounded_printf(scratch: sqlite3.Connection) -> Callable[..., Any]:
    """SQLite's own printf, refusing widths and precisions above ``MAX_PRINTF_WIDTH``.

    It overrides the built-in on the toolkit's connections and evaluates on a private in-memory connection
    of the same SQLite library, so the output is SQLite's exactly.
    """

    def printf(fmt: Any = None, *args: Any) -> Any:
        if isinstance(fmt, str):
            for size in printf_widths(fmt, args):
                try:
                    value = abs(int(size or 0))
                except (TypeError, ValueError, OverflowError):
                    value = 0
                if value > MAX_PRINTF_WIDTH:
                    raise ValueError(f"printf width {value:,} is above the toolkit's {MAX_PRINTF_WIDTH:,}")
        placeholders = ", ".join("?" * (1 + len(args)))
        return scratch.execute(f"SELECT printf({placeholders})", (fmt, *args)).fetchone()[0]

    return printf


class _ReadOnlyConnection(sqlite3.Connection):
    """A connection set up for reading the pipeline's files (made by ``sqlite3.connect``'s ``factory``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Nothing here reads the file, so nothing here can fail on a bad one; reading starts in _connect.
        super().__init__(*args, **kwargs)
        self.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        self._scratch = sqlite3.connect(":memory:", check_same_thread=False)
        bounded = _bounded_printf(self._scratch)
        for name in ("printf", "format"):
            self.create_function(name, -1, bounded)

    def close(self) -> None:
        self._scratch.close()
        super().close()


def read_only_uri(path: Path) -> str:
    return "file:" + urllib.parse.quote(str(path.resolve()), safe="/") + "?mode=ro"


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
        self._idle: list[ConnectionThread] = []
        self._all: list[ConnectionThread] = []
        self._busy: set[ConnectionThread] = set()
        self._slots = asyncio.Semaphore(pool_size)
        self._reader_options: dict[str, Any] = {
            "batch_rows": _BATCH_ROWS,
            "pragmas": [
                f"PRAGMA busy_timeout = {int(query_timeout * 1000)}",
                f"PRAGMA cache_size = {_CACHE_SIZE}",
            ],
        }
        self._tickets: set[Ticket] = set()
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
        connect_timeout: float | None = None,
    ) -> SQLiteBackend:
        """Open ``path`` read-only and read its catalog; never creates a file. Bounded by ``connect_timeout``
        (default: the query timeout), so a FIFO or a hung network filesystem cannot hang the caller."""
        limit = query_timeout if connect_timeout is None else connect_timeout
        try:
            await in_daemon_thread(_check_file, path, label, origin, seconds=limit)
        except TimeoutError:
            raise DatabaseConnectionError(
                f"{label} {path} did not answer within {limit:g} s (a hung filesystem?) ({origin})"
            ) from None
        backend = cls(path, label=label, origin=origin, query_timeout=query_timeout, pool_size=pool_size)
        try:
            async with asyncio.timeout(limit):
                rows = await backend.fetch_rows(_CATALOG_SQL)
        except TimeoutError:
            await backend.aclose()
            raise DatabaseConnectionError(
                f"{label} {path} did not open within {limit:g} s (a hung filesystem?) ({origin})"
            ) from None
        except (DatabaseQueryError, ReadOnlyError) as exc:
            await backend.aclose()
            raise DatabaseConnectionError(f"{label} {path} cannot be read as SQLite: {exc}") from exc
        except BaseException:
            await backend.aclose()
            raise
        backend.catalog = Catalog.from_columns(rows)
        missing = backend.catalog.missing(required_tables)
        if missing:
            await backend.aclose()
            raise DatabaseConnectionError(
                f"{label} {path} has no {', '.join(missing)} table: is {origin} pointing at the right file?"
            )
        return backend

    async def aclose(self) -> None:
        """Stop what is in flight (interrupt queries, end reader processes), then close everything."""
        if self._closed:
            return
        self._closed = True
        for worker in list(self._busy):
            with contextlib.suppress(Exception):
                worker.interrupt()
        # Ends the reader processes serving this backend's reads: a bulk read in flight raises at once
        # instead of reading on.
        for ticket in list(self._tickets):
            ticket.abandon()
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        # Idle readers keep recent files open for the next read; this client's file is let go of now. (Another
        # client of the same file simply reopens it in the reader on its next read.)
        with contextlib.suppress(TimeoutError):
            await in_daemon_thread(READERS.forget, self._uri, seconds=1.0)
        for worker in self._all:
            await worker.close()
        self._all.clear()
        self._idle.clear()
        # Workers are idle now (every future has settled), so this join is immediate.
        self._executor.shutdown(wait=True)
        with self._version_lock:
            if self._version_conn is not None:
                self._version_conn.close()
                self._version_conn = None

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError(f"the {self.label} connection is closed; make a new client")

    # ------------------------------------------------------------------------------- sqlite3 path
    async def _acquire(self) -> ConnectionThread:
        await self._slots.acquire()
        try:
            self._check_open()
            if self._idle:
                worker = self._idle.pop()
            else:
                worker = ConnectionThread(f"contimg-{self.label}-sqlite")
                try:
                    worker.conn = await worker.run(self._connect)
                    self._check_open()  # aclose() ran while it was being opened: aclose() did not see it
                except BaseException:
                    await worker.close()
                    raise
                self._all.append(worker)
        except BaseException:
            self._slots.release()
            raise
        self._busy.add(worker)
        return worker

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._uri, uri=True, timeout=self.timeout, isolation_level=None, factory=_ReadOnlyConnection
            )
        except sqlite3.Error as exc:
            raise DatabaseConnectionError(f"{self.label} {self.path} cannot be opened: {exc}") from exc
        try:
            conn.execute(f"PRAGMA cache_size = {_CACHE_SIZE}")
            conn.set_authorizer(_read_only_authorizer)
        except sqlite3.Error as exc:
            conn.close()
            raise DatabaseConnectionError(f"{self.label} {self.path} cannot be read: {exc}") from exc
        return conn

    async def _release(self, worker: ConnectionThread) -> None:
        self._busy.discard(worker)
        try:
            if worker.conn is not None and worker.conn.in_transaction:
                # Nothing the toolkit runs opens a transaction (the authorizer refuses it); were one open, the
                # connection would answer from an old snapshot forever. Closing it rolls the transaction back.
                log.warning("%s: a pooled connection was left in a transaction; rolled back", self.label)
                self._all.remove(worker)
                await worker.close()
            elif self._closed:
                pass  # aclose() closes it
            else:
                self._idle.append(worker)
        finally:
            self._slots.release()

    async def _with_connection(self, sql: str, params: Params, job: Callable[[sqlite3.Connection], T]) -> T:
        """``job`` on a pooled connection, in one crossing to its thread (so a small result is shaped where
        its rows were made); interrupted at the timeout or when the caller is cancelled."""
        self._check_open()
        check_params(params)
        worker = await self._acquire()
        assert worker.conn is not None
        future = worker.run(functools.partial(job, worker.conn))
        self._in_flight.add(future)
        future.add_done_callback(self._in_flight.discard)
        future.add_done_callback(_retrieved)  # a caller that gave up no longer awaits its outcome
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            await _settle_interrupted(worker, future)
            raise QueryTimeoutError(
                f"{self.label}: query interrupted after the {self.timeout:g} s query timeout "
                f"(raise query_timeout or narrow the query): {_brief(sql)}"
            ) from None
        except asyncio.CancelledError:
            await _settle_interrupted(worker, future)
            raise
        except sqlite3.Error as exc:
            if self._closed and _code(exc) == sqlite3.SQLITE_INTERRUPT:
                raise ClientClosedError(f"the {self.label} connection was closed during the query") from exc
            raise _translate(exc, self.label, sql) from exc
        except (ValueError, OverflowError) as exc:  # sqlite3 refuses a value it cannot bind
            raise ValidationError(f"{self.label}: a value in the query cannot be used: {exc}") from exc
        finally:
            await self._release(worker)

    async def fetch_rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return await self._with_connection(sql, params, functools.partial(_rows, sql, tuple(params)))

    async def fetch_small_frame(
        self,
        sql: str,
        params: Params,
        columns: Sequence[str],
        kinds: Mapping[str, Kind],
        absent: Collection[str] = (),
    ) -> pd.DataFrame:
        def job(conn: sqlite3.Connection) -> pd.DataFrame:
            return frames.from_rows(_rows(sql, tuple(params), conn), columns, kinds, absent)

        return await self._with_connection(sql, params, job)

    async def _fetch_shaped(
        self,
        sql: str,
        params: Params,
        shape: Callable[[list[str], list[tuple[Any, ...]]], T],
        max_rows: int | None = None,
    ) -> T:
        """The rows and their column names, shaped by ``shape`` in the same crossing."""

        def job(conn: sqlite3.Connection) -> T:
            cursor = conn.execute(sql, tuple(params))
            try:
                names = [d[0] for d in cursor.description or ()]
                rows = cursor.fetchall() if max_rows is None else _fetch_bounded(cursor, max_rows)
            finally:
                cursor.close()
            return shape(names, rows)

        return await self._with_connection(sql, params, job)

    async def fetch_user_frame(
        self, sql: str, params: Params, max_rows: int = DEFAULT_MAX_ROWS
    ) -> pd.DataFrame:
        return await self._fetch_shaped(sql, params, _user_frame, max_rows)

    # ---------------------------------------------------------------------------------- Arrow path
    async def fetch_frame(
        self, sql: str, params: Params, kinds: Mapping[str, Kind], post: PostProcess | None = None
    ) -> pd.DataFrame:
        return await self.fetch_frame_parts([(sql, params)], kinds, post)

    async def fetch_frame_parts(
        self, parts: Sequence[tuple[str, Params]], kinds: Mapping[str, Kind], post: PostProcess | None = None
    ) -> pd.DataFrame:
        self._check_open()
        for _, params in parts:
            check_params(params)
        ticket = Ticket()
        self._tickets.add(ticket)
        # Each part in its own reader process at once: two halves of a long listing take ~70% of the time of
        # one query on a 2-core machine. One part is read and shaped in one crossing; several are read as
        # Arrow and shaped together (frames.tables_to_frame), so their peak is that of one read.
        if len(parts) == 1:
            ((sql, params),) = parts
            work = [self._in_worker(self._arrow_frame, sql, tuple(params), kinds, post, ticket)]
        else:
            work = [self._in_worker(self._arrow_table, sql, tuple(params), ticket) for sql, params in parts]
        try:
            outcomes = await asyncio.gather(*work, return_exceptions=True)
        except asyncio.CancelledError:
            ticket.abandon()  # ends the reader processes serving this read: they stop reading now
            raise
        finally:
            self._tickets.discard(ticket)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            ticket.abandon()
            if self._closed:
                raise ClientClosedError(f"the {self.label} connection was closed during the read")
            raise failures[0]
        if any(o is None for o in outcomes):
            # ADBC met a value of another type than the first rows promised: take the tuple path instead.
            outcomes.clear()
            shaped = [await self._tuple_path_frame(sql, params, kinds, post) for sql, params in parts]
            return shaped[0] if len(shaped) == 1 else pd.concat(shaped, ignore_index=True)
        if len(parts) == 1 and isinstance(outcomes[0], pd.DataFrame):
            return outcomes[0]
        return await self._in_worker(frames.tables_to_frame, outcomes, kinds, post)

    async def _tuple_path_frame(
        self, sql: str, params: Params, kinds: Mapping[str, Kind], post: PostProcess | None
    ) -> pd.DataFrame:
        return await self._fetch_shaped(sql, params, functools.partial(_rows_frame, kinds=kinds, post=post))

    async def _in_worker(self, fn: Callable[..., T], *args: Any) -> T:
        """One crossing to this backend's worker threads, bounded by the query timeout."""
        self._check_open()
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        self._in_flight.add(future)
        future.add_done_callback(self._in_flight.discard)
        future.add_done_callback(_retrieved)  # a caller that gave up no longer awaits its outcome
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            raise QueryTimeoutError(
                f"{self.label}: bulk read took longer than the {self.timeout:g} s query timeout"
            ) from None

    async def compute(self, fn: Callable[..., T], *args: Any) -> T:
        """Pure work (pandas) off the event loop, in this backend's workers, bounded by the query timeout."""
        return await self._in_worker(fn, *args)

    def _arrow_frame(
        self,
        sql: str,
        params: tuple[Any, ...],
        kinds: Mapping[str, Kind],
        post: PostProcess | None,
        ticket: Ticket,
    ) -> pd.DataFrame | None:
        tables = [self._arrow_table(sql, params, ticket)]
        # passed as the only reference: tables_to_frame frees the read before ``post`` builds the answer
        return None if tables[0] is None else frames.tables_to_frame(tables, kinds, post)

    def _arrow_table(self, sql: str, params: tuple[Any, ...], ticket: Ticket) -> Any:
        """The rows as an Arrow table from a reader process; None where ADBC met mixed types."""
        try:
            return READERS.read(self._uri, self._reader_options, sql, params, ticket)
        except ReaderError as exc:
            if exc.kind == "type_mismatch":
                return None
            raise _translate(exc, self.label, sql) from exc
        except ReaderStopped as exc:
            if self._closed:
                raise ClientClosedError(f"the {self.label} connection was closed during the read") from exc
            if ticket.abandoned:
                raise QueryTimeoutError(f"{self.label}: the bulk read was stopped: {_brief(sql)}") from exc
            raise DatabaseConnectionError(f"{self.label}: the bulk reader stopped unexpectedly") from exc

    # ------------------------------------------------------------------------------ change detection
    async def data_version(self) -> int:
        """``PRAGMA data_version`` on a connection kept for it: changes whenever another connection commits."""
        self._check_open()
        return await self._in_worker(self._read_data_version)

    def _read_data_version(self) -> int:
        with self._version_lock:
            try:
                if self._version_conn is None:
                    self._version_conn = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
                return int(self._version_conn.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error as exc:
                raise _translate(exc, self.label, "PRAGMA data_version") from exc

    # ---------------------------------------------------------------------------------- SQL dialect


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _rows(sql: str, params: tuple[Any, ...], conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()


async def _settle_interrupted(worker: ConnectionThread, future: asyncio.Future[Any]) -> None:
    """Stops the job's statement and waits for the job, so the connection goes back to the pool idle.

    Again and again: an interrupt that comes before the statement starts (the job just queued) or between
    two of a job's statements is a no-op in SQLite, and the statement would then run to its end."""
    while not future.done():
        worker.interrupt()
        await asyncio.wait([future], timeout=0.05)


def _fetch_bounded(cursor: sqlite3.Cursor, max_rows: int) -> list[tuple[Any, ...]]:
    """At most ``max_rows`` rows and about ``MAX_RESULT_BYTES`` of text and blobs, else ValidationError."""
    rows: list[tuple[Any, ...]] = []
    size = 0
    while True:
        chunk = cursor.fetchmany(min(_FETCH_CHUNK, max_rows + 1 - len(rows)))
        if not chunk:
            return rows
        rows.extend(chunk)
        if len(rows) > max_rows:
            raise ValidationError(
                f"the query returns more than max_rows={max_rows:,} rows: add a LIMIT or a WHERE, raise "
                "max_rows, or use a bulk call (sources.measurements())"
            )
        size += sum(len(v) for row in chunk for v in row if isinstance(v, str | bytes))
        if size > MAX_RESULT_BYTES:
            raise ValidationError(
                f"the query returns more than {MAX_RESULT_BYTES // 2**30} GiB of text and blobs: select fewer "
                "columns or rows"
            )


def _rows_frame(
    names: list[str], rows: list[tuple[Any, ...]], *, kinds: Mapping[str, Kind], post: PostProcess | None
) -> pd.DataFrame:
    frame = frames.from_rows(rows, names, kinds)
    return frame if post is None else post(frame)


def _user_frame(names: list[str], rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    frame = frames.from_rows(rows, names, {})
    numeric = [n for n in names if pd.api.types.is_numeric_dtype(frame[n])]
    return frames.shape(frame, frames.time_kinds_by_name(numeric))


def _check_file(path: Path, label: str, origin: str) -> None:
    where = f"(set by {origin})"
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DatabaseConnectionError(f"{label} {path} does not exist {where}") from None
    except OSError as exc:
        raise DatabaseConnectionError(f"{label} {path} cannot be reached: {exc} {where}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise DatabaseConnectionError(f"{label} {path} is a directory, not a database file {where}")
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or a device would block or stream forever when opened.
        raise DatabaseConnectionError(f"{label} {path} is not a regular file (a pipe or a device?) {where}")
    if not os.access(path, os.R_OK):
        raise DatabaseConnectionError(f"{label} {path} is not readable by this user {where}")


def _brief(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= 160 else text[:157] + "..."


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF  # the primary result code


_CONNECTION_CODES = {
    sqlite3.SQLITE_NOTADB,
    sqlite3.SQLITE_CORRUPT,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_IOERR,
}


def _translate(exc: BaseException, label: str, sql: str) -> Exception:
    """A driver error -> the toolkit's error, by SQLite's result code (text only for ADBC's messages)."""
    message = str(exc)
    code = _code(exc)
    if code is None:  # ADBC in the reader process reports text only
        lowered = message.lower()
        if "readonly" in lowered or "read-only" in lowered or "not authorized" in lowered:
            code = sqlite3.SQLITE_READONLY
        elif "interrupted" in lowered:
            code = sqlite3.SQLITE_INTERRUPT
        elif any(s in lowered for s in ("not a database", "malformed", "unable to open", "disk i/o error")):
            code = sqlite3.SQLITE_CORRUPT
    if isinstance(exc, sqlite3.ProgrammingError):  # e.g. two statements, or a wrong number of parameters
        return DatabaseQueryError(f"{label} rejected the query ({message}): {_brief(sql)}")
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_AUTH):
        return ReadOnlyError(
            f"{label} is opened read-only; the toolkit never writes to the pipeline's databases "
            f"({message}): {_brief(sql)}"
        )
    if code == sqlite3.SQLITE_INTERRUPT:
        return QueryTimeoutError(f"{label}: query interrupted: {_brief(sql)}")
    if code in _CONNECTION_CODES:
        return DatabaseConnectionError(f"{label} cannot be read: {message}")
    if code == sqlite3.SQLITE_TOOBIG:
        return DatabaseQueryError(
            f"{label}: a value in the result is larger than {MAX_VALUE_BYTES // 2**20} MiB: {_brief(sql)}"
        )
    return DatabaseQueryError(f"{label} rejected the query ({message}): {_brief(sql)}")


def probe(path: Path) -> Probe:
    """Open ``path`` read-only, read its schema, and report its size, its WAL's and when it last changed.

    Blocking, and possibly stuck on a hung filesystem: callers run it in a bounded daemon thread."""
    try:
        _check_file(path, "database", "the service check")
        info = path.stat()
        wal = Path(f"{path}-wal")
        wal_info = wal.stat() if wal.exists() else None
        with contextlib.closing(sqlite3.connect(read_only_uri(path), uri=True, timeout=1.0)) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except DatabaseConnectionError as exc:
        return Probe(False, str(exc).split(" (set by")[0])
    except (OSError, sqlite3.Error) as exc:
        return Probe(False, f"cannot be read as SQLite: {exc}")
    modified = max(info.st_mtime, wal_info.st_mtime if wal_info else 0.0)
    return Probe(True, None, False, info.st_size, wal_info.st_size if wal_info else 0, modified)
