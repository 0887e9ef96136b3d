"""Read-only PostgreSQL backend: an asyncpg pool, with the same seam as the SQLite backend.

Every session is ``default_transaction_read_only`` (a write fails in the server, whatever the SQL), and
``statement_timeout`` bounds every statement; a timed-out statement raises ``QueryTimeoutError`` and its
connection goes back to the pool healthy. The domains write ``?`` placeholders; they are numbered here.

Bulk frames come through ADBC (``adbc-driver-postgresql``): the server's binary COPY output straight into
Arrow columns. Measured on the 1M-row photometry table: 3.6 s to an Arrow table, where asyncpg's records
shaped into a frame took 15.3 s (and ``pd.read_sql_query`` over psycopg 11.5 s). asyncpg serves every small
query (one pooled round trip, no Arrow set-up).

Supported schema: the one ``contimg migrate`` creates from a SQLite site (same tables and columns, unix times
as ``double precision``, JSON as ``json`` (its text kept exactly)), so frames and records come out as they do from SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import queue
import re
import threading
import urllib.parse
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import adbc_driver_postgresql.dbapi as adbc_pg
import asyncpg
import pandas as pd

from .. import frames
from ..arguments import check_params
from ..errors import (
    ClientClosedError,
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseQueryError,
    PrivilegedRoleWarning,
    QueryTimeoutError,
    ReadOnlyError,
    ValidationError,
)
from ..schema import Kind
from .base import POSTGRESQL, Catalog, Params, PostProcess, Probe
from .sqlite import _brief, _user_frame

T = TypeVar("T")
_LIMIT_PARAM = re.compile(r"\bLIMIT \$(\d+)")
# The sort and hash memory of the toolkit's sessions, where the server's is lower (its default is 4 MB). At
# 10M photometry rows the per-source sums spilled 734 MB to disk: 17.0-19.0 s at 4 MB, 6.8-7.2 s at 64 MB
# (0.9-1.4 s at 1M either way), and a chunk of 500,000 rows read in 0.9-1.0 s against 1.6-1.8 s. A site
# whose work_mem is higher keeps its own.
WORK_MEM = "64MB"
_RAISE_WORK_MEM = (
    f"SELECT set_config('work_mem', '{WORK_MEM}', false) "
    f"WHERE pg_size_bytes(current_setting('work_mem')) < pg_size_bytes('{WORK_MEM}')"
)
_WARNED_PRIVILEGED: set[str] = set()
# Superuser; any write privilege on a table of the current schema; or a role that runs programs, writes or
# reads server files, or may end other sessions (the pipeline's).
_PRIVILEGES_SQL = """
SELECT
  (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
  (SELECT string_agg(c.relname, ', ' ORDER BY c.relname) FROM pg_class AS c
     WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
       AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')),
  (SELECT string_agg(r, ', ' ORDER BY r) FROM unnest(ARRAY['pg_execute_server_program',
       'pg_write_server_files', 'pg_read_server_files', 'pg_signal_backend']) AS r
     WHERE pg_has_role(current_user, r, 'MEMBER'))
"""


log = logging.getLogger(__name__)
# A session the server ended (restart, pg_terminate_backend) or a socket that broke: worth one more try.
_LOST_CONNECTION = (
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.ConnectionFailureError,
    ConnectionError,
)
CLOSE_GRACE = 0.5  # seconds aclose() lets cancelled queries settle before it drops their connections
_LOST_SIGNS = ("terminating connection", "server closed the connection", "no connection to the server",
               "connection to server", "could not receive data", "could not send data")  # fmt: skip


class _AdbcConnectionLost(Exception):
    pass


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "localhost"
    netloc = (
        f"{parts.username + '@' if parts.username else ''}{host}{':' + str(parts.port) if parts.port else ''}"
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def numbered(sql: str, params: Sequence[Any]) -> tuple[str, list[Any]]:
    """``?`` placeholders -> ``$1, $2, ...`` (outside quoted text); SQLite's ``LIMIT -1`` -> no limit."""
    out: list[str] = []
    n = 0
    quote: str | None = None
    for ch in sql:
        if quote is not None:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "?":
            n += 1
            out.append(f"${n}")
            continue
        out.append(ch)
    values = list(params)
    if n != len(values):
        raise DatabaseQueryError(f"the query has {n} placeholders but {len(values)} values")
    text = "".join(out)
    for match in _LIMIT_PARAM.finditer(text):
        index = int(match.group(1)) - 1
        if values[index] == -1:
            values[index] = None  # LIMIT NULL: no limit
    return text, values


def _plain(value: Any) -> Any:
    """asyncpg values the frame builders do not know -> plain Python (numeric -> float)."""
    if value.__class__.__name__ == "Decimal":
        return float(value)
    return value


class PostgresBackend:
    """One PostgreSQL database, read-only. Make it with :meth:`open`; close it with :meth:`aclose`."""

    def __init__(
        self, url: str, pool: asyncpg.Pool, *, label: str, origin: str, query_timeout: float
    ) -> None:
        self.url = url
        self.path = redacted(url)
        self.label = label
        self.origin = origin
        self.timeout = query_timeout
        self.catalog = Catalog({}, POSTGRESQL)
        self._pool = pool
        self._closed = False
        self._adbc_idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._adbc_all: list[Any] = []
        self._adbc_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"contimg-pg-{label}")
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._adbc_busy: set[Any] = set()

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        label: str,
        origin: str,
        query_timeout: float,
        pool_size: int,
        required_tables: Iterable[str] = (),
        connect_timeout: float | None = None,
        allow_privileged: bool = False,
    ) -> PostgresBackend:
        where = f"{label} at {redacted(url)} (set by {origin})"
        settings = {
            "default_transaction_read_only": "on",
            "statement_timeout": str(int(query_timeout * 1000)),
            "application_name": "contimg-toolkit",
        }
        try:
            pool = await asyncpg.create_pool(
                url, min_size=1, max_size=pool_size, server_settings=settings,
                timeout=query_timeout if connect_timeout is None else connect_timeout,
                init=_new_session, connection_class=_Session,
            )  # fmt: skip
        except (OSError, TimeoutError) as exc:
            raise DatabaseConnectionError(f"{where} cannot be reached: {exc}") from exc
        except asyncpg.InvalidPasswordError as exc:
            raise DatabaseConnectionError(f"{where}: the server refused these credentials") from exc
        except asyncpg.InvalidCatalogNameError as exc:
            raise DatabaseConnectionError(f"{where}: no such database on that server") from exc
        except asyncpg.PostgresError as exc:
            raise DatabaseConnectionError(f"{where}: {exc}") from exc
        backend = cls(url, pool, label=label, origin=origin, query_timeout=query_timeout)
        try:
            await backend._check_privileges(where, allow_privileged)
        except BaseException:
            await backend.aclose()
            raise
        rows = await backend.fetch_rows(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema()"
        )
        backend.catalog = Catalog.from_columns(rows, POSTGRESQL)
        missing = backend.catalog.missing(required_tables)
        if missing:
            await backend.aclose()
            raise DatabaseConnectionError(
                f"{where} has no {', '.join(missing)} table: is it a migrated site?"
            )
        return backend

    async def _check_privileges(self, where: str, allow_privileged: bool) -> None:
        """Refuse a role that could change or lose the pipeline's data, unless the caller allows it."""
        ((superuser, writable, powers),) = await self.fetch_rows(_PRIVILEGES_SQL)
        reasons = []
        if superuser:
            reasons.append("is a superuser")
        if writable and not superuser:
            tables = str(writable).split(", ")
            shown = ", ".join(tables[:3]) + (f" and {len(tables) - 3} more" if len(tables) > 3 else "")
            reasons.append(f"may write tables ({shown})")
        if powers:
            reasons.append(f"is a member of {powers}")
        if not reasons:
            return
        role = f"the role {urllib.parse.urlsplit(self.url).username or '(default)'} {' and '.join(reasons)}"
        if not allow_privileged:
            raise ConfigurationError(
                f"{where}: {role}. The toolkit only reads; connect as a read-only role, e.g. "
                "CREATE ROLE contimg_reader LOGIN PASSWORD '...'; GRANT pg_read_all_data TO contimg_reader; "
                "(PostgreSQL 14 and later; before that GRANT SELECT ON ALL TABLES IN SCHEMA public). "
                "Or pass allow_privileged=True (CONTIMG_ALLOW_PRIVILEGED=1) to connect anyway."
            )
        if self.url not in _WARNED_PRIVILEGED:
            _WARNED_PRIVILEGED.add(self.url)
            warnings.warn(
                f"{where}: {role}; connecting anyway (allow_privileged). Each user statement runs in a "
                "read-only transaction that is rolled back, but a read-only role is safer.",
                PrivilegedRoleWarning,
                stacklevel=2,
            )

    async def aclose(self) -> None:
        """Stop what is in flight (asyncpg cancels a cancelled query on the server; ADBC cancels through
        libpq), then close: within about a second whatever was running."""
        if not self._closed:
            self._closed = True
            for task in list(self._in_flight):
                task.cancel()
            with self._adbc_lock:
                busy = list(self._adbc_busy)
            for cursor in busy:
                with contextlib.suppress(Exception):
                    cursor.adbc_cancel()
            if self._in_flight:
                await asyncio.wait(list(self._in_flight), timeout=CLOSE_GRACE)
            try:
                await asyncio.wait_for(self._pool.close(), CLOSE_GRACE)
            except TimeoutError:
                self._pool.terminate()
            self._executor.shutdown(wait=True)
            with self._adbc_lock:
                for conn in self._adbc_all:
                    with contextlib.suppress(Exception):
                        conn.close()
                self._adbc_all.clear()

    def _adbc_uri(self) -> str:
        """The URL with the same session settings as the asyncpg pool (read-only, statement timeout)."""
        options = urllib.parse.quote(
            f"-c default_transaction_read_only=on -c statement_timeout={int(self.timeout * 1000)}"
        )
        return f"{self.url}{'&' if '?' in self.url else '?'}options={options}"

    def _adbc_connection(self) -> Any:
        try:
            return self._adbc_idle.get_nowait()
        except queue.Empty:
            pass
        try:
            conn = adbc_pg.connect(self._adbc_uri(), autocommit=True)
        except Exception as exc:
            raise DatabaseConnectionError(
                f"{self.label} at {self.path}: cannot open a bulk connection: {str(exc).splitlines()[0]}"
            ) from exc
        try:
            with conn.cursor() as cursor:
                cursor.execute(_RAISE_WORK_MEM)
                cursor.fetchall()
        except Exception as exc:
            conn.close()
            raise DatabaseConnectionError(
                f"{self.label} at {self.path}: cannot set up a bulk connection: {str(exc).splitlines()[0]}"
            ) from exc
        with self._adbc_lock:
            self._adbc_all.append(conn)
        return conn

    def _arrow_frame(
        self, sql: str, params: list[Any], kinds: Mapping[str, Kind], post: PostProcess | None
    ) -> pd.DataFrame:
        return frames.tables_to_frame([self._read_table(sql, params)], kinds, post)

    def _read_table(self, sql: str, params: list[Any]) -> Any:
        try:
            return self._arrow_table(sql, params)
        except _AdbcConnectionLost as exc:
            log.info("%s: bulk connection lost (%s); retrying once on a new one", self.label, exc)
            try:
                return self._arrow_table(sql, params)
            except _AdbcConnectionLost as again:
                raise DatabaseConnectionError(
                    f"{self.label} at {self.path}: the connection was lost: {again}"
                ) from again

    def _arrow_table(self, sql: str, params: list[Any]) -> Any:
        conn = self._adbc_connection()
        healthy = True
        try:
            cursor = conn.cursor()
            with self._adbc_lock:
                self._adbc_busy.add(cursor)
            try:
                cursor.execute(sql, params or None)
                table = cursor.fetch_arrow_table()
            finally:
                with self._adbc_lock:
                    self._adbc_busy.discard(cursor)
                cursor.close()
        except Exception as exc:
            healthy = False
            message = str(exc)
            if self._closed:
                raise ClientClosedError(f"the {self.label} connection was closed during the read") from exc
            if "statement timeout" in message or "canceling statement" in message:
                raise QueryTimeoutError(
                    f"{self.label}: bulk read cancelled after the {self.timeout:g} s statement timeout"
                ) from exc
            if any(sign in message for sign in _LOST_SIGNS):
                raise _AdbcConnectionLost(message.splitlines()[0]) from exc
            raise DatabaseQueryError(
                f"{self.label} rejected the query ({message.splitlines()[0]}): {_brief(sql)}"
            ) from exc
        finally:
            if healthy:
                self._adbc_idle.put(conn)
            else:
                with self._adbc_lock:
                    if conn in self._adbc_all:
                        self._adbc_all.remove(conn)
                with contextlib.suppress(Exception):
                    conn.close()
        return table

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError(f"the {self.label} connection is closed; make a new client")

    async def _fetch(
        self, sql: str, params: Params, *, max_rows: int | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """One statement on a pooled connection. User statements (``max_rows`` given) run in a READ ONLY
        transaction that is always rolled back, so nothing they do (``set_config`` included) outlives them."""
        self._check_open()
        check_params(params)
        task = asyncio.ensure_future(self._fetch_retrying(sql, params, max_rows))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._closed and current is not None and not current.cancelling():
                raise ClientClosedError(f"the {self.label} connection was closed during the query") from None
            raise

    async def _fetch_retrying(
        self, sql: str, params: Params, max_rows: int | None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        text, values = numbered(sql, params)
        try:
            return await self._fetch_once(sql, text, values, max_rows)
        except _LOST_CONNECTION as exc:
            # The server restarted or dropped the session: the pool replaces the connection; a read is safe
            # to run once more.
            if self._closed:
                raise ClientClosedError(f"the {self.label} connection was closed during the query") from exc
            log.info("%s: connection lost (%s); retrying once on a new one", self.label, exc)
        try:
            return await self._fetch_once(sql, text, values, max_rows)
        except _LOST_CONNECTION as exc:
            raise DatabaseConnectionError(
                f"{self.label} at {self.path}: the connection was lost: {exc}"
            ) from exc

    async def _fetch_once(
        self, sql: str, text: str, values: list[Any], max_rows: int | None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        try:
            async with self._pool.acquire() as conn:
                if max_rows is None:
                    statement = await conn.prepare(text)
                    records = await statement.fetch(*values)
                else:
                    transaction = conn.transaction(readonly=True)
                    await transaction.start()
                    try:
                        statement = await conn.prepare(text)
                        cursor = await statement.cursor(*values)
                        records = await cursor.fetch(max_rows + 1)
                    finally:
                        await transaction.rollback()
                    if len(records) > max_rows:
                        raise ValidationError(
                            f"the query returns more than max_rows={max_rows:,} rows: add a LIMIT or a WHERE, "
                            "or raise max_rows"
                        )
                names = [a.name for a in statement.get_attributes()]
        except _LOST_CONNECTION:
            raise
        except asyncpg.QueryCanceledError as exc:
            raise QueryTimeoutError(
                f"{self.label}: query cancelled after the {self.timeout:g} s statement timeout: {_brief(sql)}"
            ) from exc
        except (asyncpg.ReadOnlySQLTransactionError, asyncpg.InsufficientPrivilegeError) as exc:
            raise ReadOnlyError(
                f"{self.label} is opened read-only; the toolkit never writes to the pipeline's databases ({exc})"
            ) from exc
        except asyncpg.PostgresError as exc:
            raise DatabaseQueryError(f"{self.label} rejected the query ({exc}): {_brief(sql)}") from exc
        except (OSError, asyncpg.InterfaceError) as exc:
            if self._closed:
                raise ClientClosedError(f"the {self.label} connection was closed during the query") from exc
            raise DatabaseConnectionError(f"{self.label} at {self.path}: {exc}") from exc
        except OverflowError as exc:
            raise ValidationError(f"{self.label}: a value in the query is out of range: {exc}") from exc
        return names, [tuple(_plain(v) for v in r) for r in records]

    async def fetch_rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return (await self._fetch(sql, params))[1]

    async def fetch_small_frame(
        self,
        sql: str,
        params: Params,
        columns: Sequence[str],
        kinds: Mapping[str, Kind],
        absent: Collection[str] = (),
    ) -> pd.DataFrame:
        # asyncpg decodes the rows on the event loop; shaping a small result there costs less than a crossing
        return frames.from_rows(await self.fetch_rows(sql, params), columns, kinds, absent)

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
        loop = asyncio.get_running_loop()
        if len(parts) == 1:  # read and shaped in one crossing
            ((sql, params),) = parts
            frame: pd.DataFrame = await loop.run_in_executor(
                self._executor, self._arrow_frame, *numbered(sql, params), kinds, post
            )
            return frame
        # Several parts read at once, then shaped together: the peak of one read (frames.tables_to_frame)
        work = [
            loop.run_in_executor(self._executor, self._read_table, *numbered(sql, params))
            for sql, params in parts
        ]
        tables = list(await asyncio.gather(*work))
        return await self.compute(frames.tables_to_frame, tables, kinds, post)

    async def fetch_user_frame(self, sql: str, params: Params, max_rows: int) -> pd.DataFrame:
        names, rows = await self._fetch(sql, params, max_rows=max_rows)
        return await self.compute(_user_frame, names, rows)

    async def compute(self, fn: Callable[..., T], *args: Any) -> T:
        """Pure work (pandas) off the event loop, in this backend's workers."""
        self._check_open()
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))

    async def data_version(self) -> int:
        """Changes with every committed write on the server (the WAL position), for the result cache."""
        (lsn,) = (await self.fetch_rows("SELECT pg_current_wal_lsn()::text"))[0]
        high, low = str(lsn).split("/")
        return (int(high, 16) << 32) + int(low, 16)


class _Session(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection whose reset on release (``RESET ALL``) puts the raised work_mem back, in the same
    round trip: asyncpg's documented way to change the reset is this method."""

    def get_reset_query(self) -> str:
        return f"{super().get_reset_query()}\n{_RAISE_WORK_MEM};"


async def _new_session(conn: asyncpg.Connection) -> None:
    await _json_as_text(conn)
    await conn.execute(_RAISE_WORK_MEM)


async def _json_as_text(conn: asyncpg.Connection) -> None:
    # json comes back as its text, as JSON text comes from SQLite; a JSON string (a blob that was not
    # valid JSON when migrated) comes back as the original text.
    def decode(text: str) -> str:
        value = json.loads(text)
        return value if isinstance(value, str) else text

    await conn.set_type_codec("json", encoder=str, decoder=decode, schema="pg_catalog")


async def probe(url: str, limit: float) -> Probe:
    """Connect read-only and ask for the database's size, within ``limit`` seconds."""
    try:
        async with asyncio.timeout(limit):
            conn = await asyncpg.connect(url, server_settings={"default_transaction_read_only": "on"})
            try:
                size = int(await conn.fetchval("SELECT pg_database_size(current_database())"))
            finally:
                await conn.close()
    except TimeoutError:
        return Probe(False, f"no answer within {limit:g} s")
    except ConnectionRefusedError:
        return Probe(False, "connection refused", refused=True)
    except (OSError, asyncpg.PostgresError) as exc:
        return Probe(False, str(exc) or type(exc).__name__)
    return Probe(True, size_bytes=size)
