"""A pooled SQLite connection's own thread: jobs in order, outcomes as they are, a light curve in one crossing."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from toolkit import AsyncClient
from toolkit.db import sqlite as sqlite_backend
from toolkit.db.connection_thread import ConnectionThread
from toolkit.demo import DemoSite


async def test_jobs_run_in_order_in_one_thread_that_is_not_the_loops() -> None:
    worker = ConnectionThread("test-worker")
    seen: list[tuple[int, int]] = []

    def job(n: int) -> int:
        time.sleep(0.01 * (3 - n))  # later jobs are quicker: only the queue keeps them in order
        seen.append((n, threading.get_ident()))
        return n * n

    try:
        results = await asyncio.gather(*(worker.run(lambda n=n: job(n)) for n in range(3)))
    finally:
        await worker.close()
    assert results == [0, 1, 4]
    assert [n for n, _ in seen] == [0, 1, 2]
    assert len({ident for _, ident in seen}) == 1 and seen[0][1] != threading.get_ident()


async def test_a_jobs_error_comes_back_as_it_is_and_the_thread_serves_on() -> None:
    worker = ConnectionThread("test-worker")
    try:
        worker.conn = await worker.run(lambda: sqlite3.connect(":memory:"))
        conn = worker.conn
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            await worker.run(lambda: conn.execute("SELECT * FROM missing").fetchall())
        assert await worker.run(lambda: conn.execute("SELECT 7").fetchall()) == [(7,)]
    finally:
        await worker.close()


async def test_a_job_its_caller_gave_up_on_finishes_and_the_next_one_runs() -> None:
    worker = ConnectionThread("test-worker")
    release = threading.Event()
    try:
        slow = worker.run(lambda: release.wait(5))
        slow.cancel()
        after = worker.run(lambda: "next")
        release.set()
        assert await asyncio.wait_for(after, 5) == "next"
    finally:
        await worker.close()


async def test_close_closes_the_connection_in_its_thread_and_ends_the_thread() -> None:
    worker = ConnectionThread("test-worker")
    conn = await worker.run(lambda: sqlite3.connect(":memory:"))
    worker.conn = conn
    await worker.close()
    worker._thread.join(5)
    assert not worker._thread.is_alive()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        _ = conn.in_transaction
    worker.interrupt()  # no connection left: a no-op, not an error


async def test_a_light_curve_is_read_and_shaped_in_one_crossing_off_the_loop(
    site: DemoSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    crossings: list[str] = []
    shaped_in: list[int] = []
    run = ConnectionThread.run
    from_rows = sqlite_backend.frames.from_rows

    def counted(self: ConnectionThread, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        crossings.append(getattr(fn, "__name__", repr(fn)))
        return run(self, fn)

    def spied(*args: Any, **kwargs: Any) -> pd.DataFrame:
        shaped_in.append(threading.get_ident())
        return from_rows(*args, **kwargs)

    async with AsyncClient(**site.settings_kwargs()) as client:
        source_id = str((await client.sources.list(limit=1))["source_id"].iloc[0])
        expected = await client.sources.lightcurve(source_id)
        monkeypatch.setattr(ConnectionThread, "run", counted)
        monkeypatch.setattr(sqlite_backend.frames, "from_rows", spied)
        got = await client.sources.lightcurve(source_id)
        assert len(crossings) == 1, crossings
    assert shaped_in and threading.get_ident() not in shaped_in
    pd.testing.assert_frame_equal(got, expected)
    assert len(got) > 1 and got["mjd"].is_monotonic_increasing
