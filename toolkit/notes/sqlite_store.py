"""The notes database in a SQLite file: WAL, ``BEGIN IMMEDIATE``, a busy timeout.

Writes run on one thread with one read-write connection, reads on another with a ``mode=ro`` connection,
so a long batch never holds up a listing. Nothing is created until the first write, and only where no
other database is: a file that holds another schema (the pipeline's products database, say) is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from ..errors import DatabaseConnectionError, NotesWriteError, ValidationError
from .model import NoteEvent, events_frame, iso
from .query import MAX_EVENTS, EventQuery
from .schema import COLUMNS, RECORD_VERSION, SQLITE_MIGRATIONS, VERSION, pending

T = TypeVar("T")
_INSERT = f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING"


def _rows(events: Sequence[NoteEvent]) -> list[tuple[Any, ...]]:
    return [
        (e.event_id, iso(e.created_at), e.ordinal, e.author, e.target_kind, e.target, e.action, e.text,
         e.tag, e.grade, e.label)
        for e in events
    ]  # fmt: skip


def schema_version(conn: sqlite3.Connection) -> int:
    """0 for a database without the notes schema; refuses a file that holds another schema."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "notes_meta" not in tables:
        foreign = sorted(tables - {"sqlite_sequence"})
        if foreign:
            raise NotesWriteError(
                f"this file is not a notes database (it holds the tables {', '.join(foreign[:5])}); the "
                "toolkit writes annotations only into a file of its own: set notes_db to a new path"
            )
        return 0
    row = conn.execute("SELECT value FROM notes_meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to ``VERSION`` (inside the caller's transaction)."""
    for statement in pending(schema_version(conn), SQLITE_MIGRATIONS):
        conn.execute(statement, (str(VERSION),) if statement is RECORD_VERSION else ())


def write_events(conn: sqlite3.Connection, events: Sequence[NoteEvent]) -> int:
    """All ``events`` in one ``BEGIN IMMEDIATE`` transaction (all or none); returns how many were new
    (an event already present, by id, is skipped)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        migrate(conn)
        before = conn.total_changes
        conn.executemany(_INSERT, _rows(events))
        added = conn.total_changes - before
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return added


def _busy(exc: sqlite3.Error) -> bool:
    return ((getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF) in (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
    )


def switch_to_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """``PRAGMA journal_mode = WAL``, retried until ``busy_timeout``.

    Two processes that switch a new file at the same moment deadlock on its locks, and SQLite answers one
    of them SQLITE_BUSY at once, without calling the busy handler (measured: 16 of 40 two-thread races
    failed within 0.1 s), so the connection's own timeout does not cover this statement.
    """
    deadline = time.monotonic() + busy_timeout
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if not _busy(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def open_for_writing(path: Path, busy_timeout: float) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    try:
        switch_to_wal(conn, busy_timeout)
        conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: a process crash loses no commit
    except BaseException:
        conn.close()
        raise
    return conn


class SQLiteNotesStore:
    dialect = "sqlite"

    def __init__(
        self, path: Path, *, busy_timeout: float, create_folder: bool, forbidden: Sequence[Path]
    ) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._create_folder = create_folder
        self._forbidden = tuple(forbidden)
        self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="contimg-notes-write")
        self._read_thread = ThreadPoolExecutor(1, thread_name_prefix="contimg-notes-read")
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None

    @property
    def location(self) -> str:
        return str(self.path)

    async def _run(self, pool: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn)

    # ---------------------------------------------------------------------------------- writing
    async def append(self, events: Sequence[NoteEvent]) -> int:
        return await self._run(self._write_thread, lambda: self._append(events))

    def _append(self, events: Sequence[NoteEvent]) -> int:
        try:
            if self._writer is None:
                self._check_writable()
                self._writer = open_for_writing(self.path, self.busy_timeout)
            return write_events(self._writer, events)
        except sqlite3.Error as exc:
            raise self._write_error(exc) from exc

    def _check_writable(self) -> None:
        folder = self.path.parent
        if not folder.is_dir():
            if not self._create_folder:
                raise NotesWriteError(
                    f"cannot write the notes database {self.path}: its folder does not exist (create it, or "
                    "set notes_db / CONTIMG_NOTES_DB to a path in an existing folder)"
                )
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise NotesWriteError(f"cannot create the notes folder {folder}: {exc.strerror}") from exc
        if self.path.exists():
            if not self.path.is_file():
                raise NotesWriteError(f"the notes database {self.path} is not a regular file")
            for other in self._forbidden:
                with contextlib.suppress(OSError):
                    if self.path.samefile(other):
                        raise NotesWriteError(
                            f"notes_db {self.path} is one of the pipeline's databases; the toolkit never "
                            "writes there: set notes_db to a file of its own"
                        )
            if not os.access(self.path, os.W_OK):
                raise NotesWriteError(
                    f"the notes database {self.path} is not writable by this user (check its permissions)"
                )
        elif not os.access(folder, os.W_OK):
            raise NotesWriteError(
                f"cannot create the notes database {self.path}: its folder is not writable by this user"
            )

    def _write_error(self, exc: sqlite3.Error) -> NotesWriteError:
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if _busy(exc):
            return NotesWriteError(
                f"the notes database {self.path} stayed locked by another writer for {self.busy_timeout:g} s; "
                "nothing was written: try again"
            )
        if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
            return NotesWriteError(
                f"cannot write the notes database {self.path} ({exc}); nothing was written"
            )
        if code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
            return NotesWriteError(
                f"{self.path} is not a readable notes database ({exc}); nothing was written"
            )
        if code == sqlite3.SQLITE_FULL:
            return NotesWriteError(f"the disk of {self.path} is full; nothing was written")
        return NotesWriteError(f"writing the notes database {self.path} failed ({exc}); nothing was written")

    # ---------------------------------------------------------------------------------- reading
    async def read(self, query: EventQuery) -> pd.DataFrame | None:
        """The events ``query`` selects, oldest first; None when the database does not exist yet."""
        return await self._run(self._read_thread, lambda: self._read(query))

    async def version(self) -> int | None:
        return await self._run(self._read_thread, self._version)

    def _version(self) -> int | None:
        reader = self._open_reader()
        if reader is None:
            return None
        rows = self._ask(reader, "SELECT COALESCE(MAX(seq), 0) FROM events", ())
        return 0 if rows is None else int(rows[0][0])

    def _open_reader(self) -> sqlite3.Connection | None:
        if self._reader is None:
            if not self.path.exists():
                return None
            uri = "file:" + urllib.parse.quote(str(self.path.resolve()), safe="/") + "?mode=ro"
            try:
                self._reader = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout, isolation_level=None)
            except sqlite3.Error as exc:
                raise DatabaseConnectionError(f"cannot open the notes database {self.path}: {exc}") from exc
        return self._reader

    def _ask(self, reader: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Any] | None:
        """The rows, or None where the file has no events table yet (created, never written)."""
        try:
            if "events" not in {r[0] for r in reader.execute("SELECT name FROM sqlite_master")}:
                return None
            return reader.execute(sql, params).fetchmany(MAX_EVENTS + 1)
        except sqlite3.Error as exc:
            reader.close()
            self._reader = None
            raise DatabaseConnectionError(f"cannot read the notes database {self.path}: {exc}") from exc

    def _read(self, query: EventQuery) -> pd.DataFrame | None:
        reader = self._open_reader()
        if reader is None:
            return None
        rows = self._ask(reader, *query.sql("sqlite"))
        if rows is None:
            return events_frame([])
        if len(rows) > MAX_EVENTS:
            raise ValidationError(
                f"more than {MAX_EVENTS:,} annotation events match; narrow the read (kind, target, since)"
            )
        return events_frame(rows)

    async def aclose(self) -> None:
        def close(conn: sqlite3.Connection | None) -> Callable[[], None]:
            return lambda: conn.close() if conn is not None else None

        with contextlib.suppress(RuntimeError):
            await self._run(self._write_thread, close(self._writer))
            await self._run(self._read_thread, close(self._reader))
        self._writer = self._reader = None
        self._write_thread.shutdown(wait=False)
        self._read_thread.shutdown(wait=False)
