"""Bulk SQLite reads through ADBC, in reader processes of their own (see :mod:`.sqlite_arrow_child` for why).

The toolkit's process reads the pipeline's SQLite files with Python's ``sqlite3`` only; Arrow tables come from
a small pool of child processes, each running ADBC's SQLite. A read is one request and a stream of Arrow
batches back over a pipe (5-25% over an in-process ADBC read of 1M rows, measured side by side). Stopping a
read (timeout, cancel, ``aclose``) ends its process at once; the next read starts a fresh one (~0.2 s). The
pool is the process's, not a client's: a notebook or a test suite that makes many clients starts readers
once, not once per client.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from .sqlite_arrow_child import HEADER

CHILD = Path(__file__).with_name("sqlite_arrow_child.py")


class ReaderStopped(Exception):
    """The reader process was ended (the read was abandoned, or the pool closed) or died."""


class ReaderError(Exception):
    """ADBC or SQLite refused the query in the reader process; ``kind`` is "type_mismatch" or "error"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _NotSent(ReaderStopped):
    """The request never reached the reader (it had died while idle): safe to send again to a new one."""


class Ticket:
    """One caller's read (possibly in several parts): abandoning it ends the processes serving it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.abandoned = False
        self._serving: set[_Reader] = set()

    def abandon(self) -> None:
        with self._lock:
            self.abandoned = True
            serving = list(self._serving)
        for reader in serving:
            reader.kill()

    def _attach(self, reader: _Reader) -> bool:
        with self._lock:
            if self.abandoned:
                return False
            self._serving.add(reader)
            return True

    def _detach(self, reader: _Reader) -> None:
        with self._lock:
            self._serving.discard(reader)


class _Reader:
    """One child process and its pipes. Used by one thread at a time."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            # The parent's import path, so the child finds pyarrow and ADBC wherever the parent did.
            env={
                **os.environ,
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
            },
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._in: IO[bytes] = self.process.stdin
        self._out: IO[bytes] = self.process.stdout
        self._killed = False

    def alive(self) -> bool:
        # A killed process may not be reaped yet (poll() still None): it must never be reused.
        return not self._killed and self.process.poll() is None

    def kill(self) -> None:
        self._killed = True
        if self.process.poll() is None:
            self.process.kill()

    def close(self) -> None:
        self.kill()
        for pipe in (self._in, self._out):
            with contextlib.suppress(OSError):
                pipe.close()
        self.process.wait()

    def forget(self, uri: str) -> None:
        """Close ``uri`` in this reader (it keeps recently used files open otherwise)."""
        request = pickle.dumps((uri, None, [], {}), protocol=pickle.HIGHEST_PROTOCOL)
        self._in.write(len(request).to_bytes(HEADER, "little") + request)
        self._in.flush()
        tag, _ = self._frame()
        if tag != b"D":
            raise ReaderStopped(f"the reader process answered {tag!r} to a close")

    def read(self, uri: str, sql: str, params: Sequence[Any], options: dict[str, Any]) -> pa.Table:
        request = pickle.dumps((uri, sql, list(params), options), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._in.write(len(request).to_bytes(HEADER, "little") + request)
            self._in.flush()
        except (BrokenPipeError, ValueError, OSError) as exc:
            raise _NotSent("the reader process is gone") from exc
        schema: pa.Schema | None = None
        batches: list[pa.RecordBatch] = []
        while True:
            tag, body = self._frame()
            if tag == b"S":
                schema = pa.ipc.read_schema(pa.py_buffer(body))
            elif tag == b"B":
                assert schema is not None
                batches.append(pa.ipc.read_record_batch(pa.py_buffer(body), schema))
            elif tag == b"D":
                assert schema is not None
                return pa.Table.from_batches(batches, schema=schema)
            elif tag == b"E":
                info = json.loads(body)
                raise ReaderError(str(info["kind"]), str(info["message"]))
            else:
                raise ReaderStopped(f"the reader process sent an unknown frame {tag!r}")

    def _frame(self) -> tuple[bytes, bytearray]:
        head = self._exactly(1 + HEADER)
        body = self._exactly(int.from_bytes(head[1:], "little"))
        return bytes(head[:1]), body

    def _exactly(self, size: int) -> bytearray:
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            try:
                n = self._out.readinto(view[got:])  # type: ignore[attr-defined]
            except (ValueError, OSError) as exc:
                raise ReaderStopped("the reader process was stopped") from exc
            if not n:
                raise ReaderStopped("the reader process was stopped")
            got += n
        return buffer


class ReaderPool:
    """The process's reader processes: started on demand, shared by every SQLite backend (a reader serves
    any file), and reused last-used-first (its page cache is the warmest). At most ``max_processes`` run
    (a read beyond waits for one) and at most ``idle_max`` wait idle; a busy one belongs to one read until it
    finishes or its ticket is abandoned (which ends it)."""

    def __init__(self, idle_max: int = 8, max_processes: int | None = None) -> None:
        self._idle_max = idle_max
        # Reads are CPU work: more processes than this only add start-up costs and contention, so a read
        # beyond it waits for a reader to come free.
        self._max = max_processes or max(4, 2 * (os.cpu_count() or 2))
        self._lock = threading.Condition()
        self._idle: list[_Reader] = []
        self._all: set[_Reader] = set()
        self._pid = os.getpid()

    def read(
        self, uri: str, options: dict[str, Any], sql: str, params: Sequence[Any], ticket: Ticket
    ) -> pa.Table:
        """The query's rows as an Arrow table (blocking: call from a worker thread)."""
        for attempt in (1, 2):
            reader = self._acquire(ticket)
            if not ticket._attach(reader):
                self._release(reader)
                raise ReaderStopped("the read was abandoned")
            try:
                return reader.read(uri, sql, params, options)
            except ReaderError:
                raise
            except _NotSent:
                reader.kill()
                if attempt == 2 or ticket.abandoned:
                    raise
            except BaseException:
                reader.kill()
                raise
            finally:
                ticket._detach(reader)
                self._release(reader)
        raise AssertionError("unreachable")

    def _acquire(self, ticket: Ticket) -> _Reader:
        with self._lock:
            if self._pid != os.getpid():
                # A forked child inherited the parent's readers and pipes: never touch them, start afresh.
                self._idle, self._all, self._pid = [], set(), os.getpid()
            while True:
                while self._idle:
                    reader = self._idle.pop()
                    if reader.alive():
                        return reader
                    self._forget(reader)
                if len(self._all) < self._max:
                    reader = _Reader()
                    self._all.add(reader)
                    return reader
                if ticket.abandoned:
                    raise ReaderStopped("the read was abandoned while it waited for a reader")
                self._lock.wait(0.05)

    def _release(self, reader: _Reader) -> None:
        with self._lock:
            if reader in self._all and reader.alive() and len(self._idle) < self._idle_max:
                self._idle.append(reader)
            else:
                self._forget(reader)
            self._lock.notify()

    def _forget(self, reader: _Reader) -> None:
        self._all.discard(reader)
        reader.close()

    def forget(self, uri: str) -> None:
        """Have every idle reader close ``uri`` (its last client closed), so no file stays open on its behalf.
        A reader that does not answer is ended."""
        with self._lock:
            idle = list(self._idle) if self._pid == os.getpid() else []
            self._idle = []
        for reader in idle:
            try:
                reader.forget(uri)
            except (ReaderStopped, OSError, ValueError):
                reader.kill()
            self._release(reader)

    def close(self) -> None:
        """End every reader process, busy ones included (their reads raise ``ReaderStopped``)."""
        with self._lock:
            readers = list(self._all) if self._pid == os.getpid() else []
            self._all.clear()
            self._idle.clear()
        for reader in readers:
            reader.close()

    def processes(self) -> int:
        with self._lock:
            return len(self._all)


READERS = ReaderPool()
atexit.register(READERS.close)
