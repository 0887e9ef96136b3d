"""The Arrow reader processes: what a broken install reports, and that a read returns what SQLite holds."""

from __future__ import annotations

import asyncio
import json
import pickle
import subprocess
import sys

import pyarrow as pa
import pytest

from toolkit.db.sqlite import read_only_uri
from toolkit.db.sqlite_arrow import CHILD, READERS, ReaderError, Ticket
from toolkit.db.sqlite_arrow_child import HEADER
from toolkit.demo import DemoSite


def test_a_reader_that_cannot_import_its_libraries_says_so_for_every_request() -> None:
    request = pickle.dumps(("file:x?mode=ro", "SELECT 1", [], {"pragmas": [], "batch_rows": 10}))
    framed = (len(request).to_bytes(HEADER, "little") + request) * 2
    # -S -I: no site-packages, so neither pyarrow nor ADBC can be imported.
    done = subprocess.run(
        [sys.executable, "-S", "-I", str(CHILD)], input=framed, capture_output=True, timeout=30
    )
    replies = []
    out = done.stdout
    while out:
        tag, size = out[:1], int.from_bytes(out[1 : 1 + HEADER], "little")
        replies.append((tag, json.loads(out[1 + HEADER : 1 + HEADER + size])))
        out = out[1 + HEADER + size :]
    assert [t for t, _ in replies] == [b"E", b"E"]
    assert all("the Arrow reader cannot start" in r["message"] for _, r in replies)


def test_a_read_returns_the_rows_sqlite_holds_and_errors_come_back_as_reader_errors(site: DemoSite) -> None:
    import sqlite3

    uri = read_only_uri(site.products_db)
    options = {"pragmas": [], "batch_rows": 64}
    table = READERS.read(
        uri, options, "SELECT id, path FROM images WHERE id <= ? ORDER BY id", [200], Ticket()
    )
    with sqlite3.connect(uri, uri=True) as conn:
        expected = conn.execute("SELECT id, path FROM images WHERE id <= 200 ORDER BY id").fetchall()
    conn.close()
    assert isinstance(table, pa.Table) and table.num_rows == 200  # several batches of 64, in order
    assert list(zip(table["id"].to_pylist(), table["path"].to_pylist(), strict=True)) == expected
    with pytest.raises(ReaderError, match="no such table"):
        READERS.read(uri, options, "SELECT * FROM no_such_table", [], Ticket())


def _files_open_in_readers() -> set[str]:
    """Every file the reader processes of this process hold open (from /proc)."""
    import os
    from pathlib import Path

    opened: set[str] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"sqlite_arrow_child" not in (entry / "cmdline").read_bytes():
                continue
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != os.getpid():
                continue
            opened |= {os.readlink(fd) for fd in (entry / "fd").iterdir()}
        except OSError:
            continue
    return opened


async def test_a_closed_client_leaves_no_file_open_in_the_readers(site: DemoSite) -> None:
    from toolkit import AsyncClient

    db = str(site.products_db.resolve())
    async with AsyncClient(**site.settings_kwargs()) as client:
        await client.images.list()
        await client.sources.measurements()
        assert db in await asyncio.to_thread(_files_open_in_readers)
    assert db not in await asyncio.to_thread(_files_open_in_readers)
    async with AsyncClient(**site.settings_kwargs()) as client:  # and the readers still serve the next one
        assert len(await client.images.list()) > 0
