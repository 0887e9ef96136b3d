"""The Arrow reader process: runs the toolkit's bulk SQLite queries through ADBC and streams Arrow batches back.

Run as a script (``python sqlite_arrow_child.py``) by :mod:`toolkit.db.sqlite_arrow`, never imported by the
toolkit's own process. Why a separate process: ADBC's SQLite driver links its own copy of SQLite, and two
copies of SQLite in one process do not see each other's POSIX locks (locks belong to the process). A copy
opening or closing the file then resets the WAL index, or drops the locks, under the other copy's readers:
stale and inconsistent answers while the pipeline writes. In this process ADBC's SQLite is the only one, and
the toolkit's process uses only Python's ``sqlite3``. A second benefit: a bulk read that is cancelled or
timed out is stopped by ending this process, which ADBC itself cannot do (``adbc_cancel`` is not
implemented for SQLite).

It imports only the standard library, pyarrow and the ADBC driver, so it starts in a fraction of a second.

Protocol (stdin/stdout, one request at a time):
  request   8-byte little-endian length, then a pickled ``(uri, sql, params, options)``; ``sql`` None
            means "close ``uri``" and is answered with ``D``
  response  frames of a 1-byte tag, an 8-byte little-endian length and a body:
            ``S`` Arrow schema, ``B`` one record batch (IPC message), ``D`` done (empty body),
            ``E`` error (UTF-8 JSON: ``{"kind": "type_mismatch" | "error", "message": ...}``)
"""

from __future__ import annotations

import contextlib
import json
import pickle
import signal
import sys
from typing import Any, BinaryIO

HEADER = 8
MAX_OPEN = 4  # databases one reader keeps open (the files of the clients that used it last)


def _frame(out: BinaryIO, tag: bytes, body: Any) -> None:
    size = body.size if hasattr(body, "size") else len(body)
    out.write(tag + int(size).to_bytes(HEADER, "little"))
    out.write(body)


def _error(out: BinaryIO, exc: BaseException) -> None:
    message = f"{exc}" or type(exc).__name__
    kind = "type_mismatch" if "type mismatch" in message.lower() else "error"
    _frame(out, b"E", json.dumps({"kind": kind, "message": message}).encode())
    out.flush()


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    # ADBC's low-level API, not its DB-API module: that one imports pandas, which triples the start-up time.
    import adbc_driver_manager
    import adbc_driver_sqlite
    import pyarrow as pa

    def statement_for(conn: Any, sql: str, params: list[Any], batch_rows: int) -> Any:
        statement = adbc_driver_manager.AdbcStatement(conn)
        try:
            statement.set_options(**{adbc_driver_sqlite.StatementOptions.BATCH_ROWS.value: str(batch_rows)})
            statement.set_sql_query(sql)
            if params:
                names = [f"p{i}" for i in range(len(params))]
                statement.bind(pa.record_batch([pa.array([p]) for p in params], names=names))
        except BaseException:
            statement.close()
            raise
        return statement

    def stream(statement: Any) -> Any:
        handle, _ = statement.execute_query()
        return pa.RecordBatchReader._import_from_c(handle.address)

    def close(*handles: Any) -> None:
        for handle in handles:
            with contextlib.suppress(Exception):
                handle.close()

    # Open databases by (uri, pragmas), most recently used last; a reader serves every client of the process.
    databases: dict[tuple[str, tuple[str, ...]], tuple[Any, Any]] = {}
    while True:
        header = inp.read(HEADER)
        if len(header) < HEADER:
            return  # the toolkit closed the pipe: its client is closing
        uri, sql, params, options = pickle.loads(inp.read(int.from_bytes(header, "little")))
        if sql is None:  # the toolkit closed its last client on this file: let go of it
            for key in [k for k in databases if k[0] == uri]:
                close(*reversed(databases.pop(key)))
            _frame(out, b"D", b"")
            out.flush()
            continue
        try:
            key = (uri, tuple(options["pragmas"]))
            if key in databases:
                databases[key] = databases.pop(key)
            else:
                while len(databases) >= MAX_OPEN:
                    old_database, old_conn = databases.pop(next(iter(databases)))
                    close(old_conn, old_database)
                database = adbc_driver_sqlite.connect(uri)
                # ADBC connections autocommit: no read transaction is held open between queries, so each
                # query sees the pipeline's latest commit.
                conn = adbc_driver_manager.AdbcConnection(database)
                try:
                    for pragma in options["pragmas"]:
                        statement = statement_for(conn, pragma, [], 1)
                        try:
                            stream(statement).read_all()
                        finally:
                            close(statement)
                except BaseException:
                    close(conn, database)
                    raise
                databases[key] = (database, conn)
            statement = statement_for(databases[key][1], sql, params, options["batch_rows"])
            try:
                reader = stream(statement)
                try:
                    _frame(out, b"S", reader.schema.serialize())
                    for batch in reader:
                        _frame(out, b"B", batch.serialize())
                    _frame(out, b"D", b"")
                    out.flush()
                finally:
                    close(reader)
            finally:
                close(statement)
        except BrokenPipeError:
            return
        except Exception as exc:
            _error(out, exc)


def refuse_all(inp: BinaryIO, out: BinaryIO, exc: BaseException) -> None:
    """Answer every request with the reason this process cannot read (a missing or broken install)."""
    while len(header := inp.read(HEADER)) == HEADER:
        inp.read(int.from_bytes(header, "little"))
        _frame(
            out,
            b"E",
            json.dumps({"kind": "error", "message": f"the Arrow reader cannot start: {exc}"}).encode(),
        )
        out.flush()


def main() -> None:
    # Ctrl-C in a terminal reaches the whole process group: the toolkit decides what stops, and ends this
    # process itself when it must.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import adbc_driver_manager  # noqa: F401 - checked here so that a broken install is reported, not a crash
        import adbc_driver_sqlite  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as exc:
        refuse_all(sys.stdin.buffer, sys.stdout.buffer, exc)
        return
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
