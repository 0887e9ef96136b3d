"""Faults under an open client: the database file deleted, replaced or truncated; a followed log deleted and
written again; the PostgreSQL server restarted. Every call answers or raises one of our errors, and none hangs."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from toolkit import AsyncClient, DatabaseConnectionError, ToolkitError
from toolkit.demo import DemoSite

from ..conftest import PostgresSite


async def _every_path(client: AsyncClient) -> list[object]:
    """One call of each kind; each either answers or raises a ToolkitError, within a few seconds."""
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: client.sql("SELECT COUNT(*) AS n FROM images"),
        lambda: client.images.list(),
        lambda: client.images.list(limit=10),
        lambda: client.sources.measurements(),
        lambda: client.stats(),
        lambda: client.qa.images(),
    ]
    outcomes: list[object] = []
    for call in calls:
        try:
            async with asyncio.timeout(10):
                outcomes.append(await call())
        except ToolkitError as exc:
            outcomes.append(exc)
    return outcomes


@pytest.mark.parametrize("fault", ["deleted", "replaced", "truncated", "garbage"])
async def test_a_database_file_changed_under_an_open_client(
    writable_site: DemoSite, tmp_path: Path, fault: str
) -> None:
    db = writable_site.products_db
    async with AsyncClient(**writable_site.settings_kwargs(), query_timeout=5) as client:
        assert not any(isinstance(o, Exception) for o in await _every_path(client))
        if fault == "deleted":
            for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                path.unlink(missing_ok=True)
        elif fault == "replaced":
            other = tmp_path / "other.sqlite3"
            shutil.copy(db, other)
            os.replace(other, db)
        elif fault == "truncated":
            os.truncate(db, 0)
        else:
            db.write_bytes(b"not a database at all " * 100)
        await _every_path(client)  # answers (from open handles) or our errors, never a hang
        await _every_path(client)
    # A new client on what is left opens cleanly (a replaced file) or says why it cannot.
    reopen = AsyncClient(**writable_site.settings_kwargs(), query_timeout=5)
    if fault == "replaced":
        async with reopen as again:
            assert not any(isinstance(o, Exception) for o in await _every_path(again))
    else:
        with pytest.raises(DatabaseConnectionError):
            async with reopen:
                pass


async def test_a_followed_log_deleted_and_written_again(writable_site: DemoSite, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    path = logs / "job-x.log"
    path.write_text("one\n")
    received: list[str] = []
    async with AsyncClient(**{**writable_site.settings_kwargs(), "log_dirs": [logs]}) as client:

        async def consume() -> None:
            async for line in client.logs.follow("job-x", from_end=False, poll_interval=0.02):
                received.append(line)

        async def wait_for(n: int) -> None:
            async with asyncio.timeout(5):
                while len(received) < n:  # noqa: ASYNC110 - polling what the follower received
                    await asyncio.sleep(0.01)

        task = asyncio.create_task(consume())
        await wait_for(1)
        path.unlink()  # deleted: the follower waits for it
        await asyncio.sleep(0.2)
        path.write_text("two\n")  # and written again: followed from its first line
        await wait_for(2)
        path.write_text("")  # truncated
        await asyncio.sleep(0.1)
        path.write_text("three\n")
        await wait_for(3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert received == ["one", "two", "three"]


async def test_the_postgresql_server_restarted_mid_session(postgres_site: PostgresSite) -> None:
    restart = os.environ.get("CONTIMG_TEST_POSTGRES_RESTART")
    if not restart:
        pytest.skip("scripts/with-postgres sets CONTIMG_TEST_POSTGRES_RESTART")
    async with AsyncClient(**postgres_site.settings_kwargs(), cache_bytes=0, query_timeout=10) as client:
        before = await client.images.list(limit=20)
        await asyncio.to_thread(
            subprocess.run, restart, shell=True, check=True, capture_output=True, timeout=60
        )
        answers = 0
        for _ in range(3):  # the pool's dead connections are replaced; a failure is ours, and quick
            try:
                async with asyncio.timeout(15):
                    frame = await client.images.list(limit=20)
                    counted = await client.sql("SELECT COUNT(*) AS n FROM images")
                assert frame.equals(before) and int(counted["n"].iloc[0]) >= 20
                answers += 1
            except DatabaseConnectionError:
                pass
        assert answers >= 1, "the client never reconnected"
