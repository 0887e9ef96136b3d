"""The notes database under concurrent writers and crashes, on both backends, with real processes.

- two processes each add 1,000 comments to one target at the same time: exactly 2,000 events, no error;
- a process killed with SIGKILL in the middle of a batch's transaction: the batch is entirely absent, the
  database opens cleanly and takes the next write.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from toolkit import AsyncClient
from toolkit.demo import DemoSite
from toolkit.notes.sqlite_store import open_for_writing

from .conftest import digests

WRITER = """
import sys
from toolkit import Client
products, notes, target, count, mode = sys.argv[1:6]
with Client(products_db=products, notes_db=notes, user="writer") as client:
    if mode == "one-by-one":
        print("ready", flush=True)
        sys.stdin.readline()  # start together
        for n in range(int(count)):
            client.notes.comment(("source", target), f"comment {n}")
    else:
        with client.notes.batch() as batch:
            for n in range(int(count)):
                batch.comment(("source", target), f"batch comment {n}")
            print("committing", flush=True)
print("done", flush=True)
"""


def _writer(site: DemoSite, notes: Path | str, count: int, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            WRITER,
            str(site.products_db),
            str(notes),
            site.transient_source,
            str(count),
            mode,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


async def _events(site: DemoSite, notes: Path | str) -> int:
    async with AsyncClient(**{**site.settings_kwargs(), "notes_db": notes}) as c:
        return len(await c.notes.history(("source", site.transient_source)))


def test_two_processes_each_adding_1000_comments_at_once(site: DemoSite, notes_location: Path | str) -> None:
    before = digests(site)
    writers = [_writer(site, notes_location, 1000, "one-by-one") for _ in range(2)]
    for w in writers:
        assert w.stdout is not None and w.stdout.readline().strip() == "ready"
    for w in writers:
        assert w.stdin is not None
        w.stdin.write("go\n")
        w.stdin.flush()
    for w in writers:
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
        assert out.strip().endswith("done")
    assert asyncio.run(_events(site, notes_location)) == 2000
    assert digests(site) == before


def _holds_a_write_transaction(notes: Path | str) -> bool:
    """Whether some connection is inside a write transaction on the notes database right now."""
    if isinstance(notes, Path):
        if not notes.exists():
            return False
        conn = sqlite3.connect(notes, timeout=0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            conn.close()

    import asyncpg

    async def ask() -> bool:
        conn = await asyncpg.connect(notes)
        try:
            return bool(
                await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'contimg-toolkit notes' "
                    "AND xact_start IS NOT NULL AND query ILIKE 'INSERT INTO events%'"
                )
            )
        finally:
            await conn.close()

    return asyncio.run(ask())


def test_a_process_killed_mid_batch_leaves_nothing_of_it(site: DemoSite, notes_location: Path | str) -> None:
    # A first write creates the database, so that the batch below is the only thing in flight.
    async def first() -> None:
        async with AsyncClient(**{**site.settings_kwargs(), "notes_db": notes_location}) as c:
            await c.notes.comment(("source", site.transient_source), "before the crash")

    asyncio.run(first())
    writer = _writer(site, notes_location, 100_000, "batch")
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "committing"
    deadline = time.monotonic() + 60
    while writer.poll() is None and time.monotonic() < deadline:
        if _holds_a_write_transaction(notes_location):
            os.kill(writer.pid, signal.SIGKILL)
            break
        time.sleep(0.002)
    writer.wait(timeout=60)
    assert writer.returncode == -signal.SIGKILL, (
        "the batch ended before it could be killed in its transaction"
    )
    assert asyncio.run(_events(site, notes_location)) == 1, "a killed batch left part of itself behind"
    if isinstance(notes_location, Path):
        with sqlite3.connect(notes_location) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    async def after() -> int:
        async with AsyncClient(**{**site.settings_kwargs(), "notes_db": notes_location}) as c:
            await c.notes.comment(("source", site.transient_source), "after the crash")
            return len(await c.notes.history(("source", site.transient_source)))

    assert asyncio.run(after()) == 2


def test_two_writers_creating_the_notes_file_at_the_same_moment_both_succeed(tmp_path: Path) -> None:
    # Switching a new file to WAL from two connections at once deadlocks on its locks, and SQLite answers
    # one of them SQLITE_BUSY without calling the busy handler: 16 of 40 rounds failed before the retry.
    failures: list[BaseException] = []
    for round_ in range(40):
        path = tmp_path / f"notes-{round_}.sqlite"
        start = threading.Barrier(2)

        def open_and_write(path: Path = path, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                conn = open_for_writing(path, busy_timeout=10.0)
            except BaseException as exc:  # collected and asserted below
                failures.append(exc)
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
                conn.execute("INSERT INTO t VALUES (1)")
                conn.execute("COMMIT")
            finally:
                conn.close()

        threads = [threading.Thread(target=open_and_write) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert failures == []
