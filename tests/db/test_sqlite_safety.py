"""Read-only by construction, clear errors for bad files, time bounds, live writers, and clean shutdown."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from toolkit import (
    AsyncClient,
    ClientClosedError,
    ConfigurationError,
    DatabaseConnectionError,
    QueryTimeoutError,
    ReadOnlyError,
)
from toolkit.demo import DemoSite, build_demo_site

from ..threads import live_threads, until_no_new_threads

RUNAWAY = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT COUNT(*) FROM r"


# ------------------------------------------------------------------------------------------- bad files
async def test_missing_database_names_path_and_variable_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope" / "products.sqlite3"
    monkeypatch.setenv("PIPELINE_PRODUCTS_DB", str(missing))
    client = AsyncClient()
    with pytest.raises(DatabaseConnectionError, match="PIPELINE_PRODUCTS_DB") as info:
        await client.images.list()
    assert str(missing) in str(info.value)
    assert not missing.exists() and not missing.parent.exists()
    await client.aclose()

    with pytest.raises(DatabaseConnectionError, match="argument products_db"):
        async with AsyncClient(products_db=tmp_path / "x.sqlite3"):
            pass
    assert list(tmp_path.iterdir()) == []  # noqa: ASYNC240 - a test's own check


def test_no_database_configured_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPELINE_PRODUCTS_DB", raising=False)
    with pytest.raises(ConfigurationError, match="PIPELINE_PRODUCTS_DB"):
        AsyncClient()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"this is a log file, not a database\n" * 50, "not a database"),
        (b"", "no ms_index table"),
        (b"SQLite format 3\x00" + b"\xff" * 4000, "cannot"),
    ],
)
async def test_not_a_database_or_corrupt(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "products.sqlite3"
    path.write_bytes(content)
    before = live_threads()
    with pytest.raises(DatabaseConnectionError, match=reason):
        async with AsyncClient(products_db=path):
            pass
    assert path.read_bytes() == content
    await until_no_new_threads(before)


async def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(DatabaseConnectionError, match="directory"):
        async with AsyncClient(products_db=tmp_path):
            pass


async def test_wrong_file_for_the_registry(tmp_path: Path, site: DemoSite) -> None:
    # The products database given as the registry: it has no caltables table.
    with pytest.raises(DatabaseConnectionError, match="caltables"):
        async with AsyncClient(products_db=site.products_db, cal_registry_db=site.products_db):
            pass


# ------------------------------------------------------------------------------------------ read-only
@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO images (path) VALUES ('/x.fits')",
        "UPDATE ms_index SET stage = 'imaged'",
        "DELETE FROM photometry",
        "DROP TABLE images",
        "CREATE TABLE t (x)",
        "CREATE TEMP TABLE t (x)",
        "PRAGMA journal_mode = DELETE",
        "ATTACH DATABASE '{tmp}/other.db' AS other",
        "VACUUM INTO '{tmp}/copy.db'",
    ],
)
async def test_writes_through_sql_are_refused(
    newer_client: AsyncClient, tmp_path: Path, statement: str
) -> None:
    with pytest.raises(ReadOnlyError, match="read-only"):
        await newer_client.sql(statement.format(tmp=tmp_path))
    assert list(tmp_path.iterdir()) == [], "no file may be created through sql()"  # noqa: ASYNC240
    assert len(await newer_client.images.list(limit=1)) == 1  # still usable


async def test_multiple_statements_and_syntax_errors_are_query_errors(newer_client: AsyncClient) -> None:
    from toolkit import DatabaseQueryError

    with pytest.raises(DatabaseQueryError, match="syntax"):
        await newer_client.sql("SELEKT 1")
    with pytest.raises(DatabaseQueryError):
        await newer_client.sql("SELECT 1; DELETE FROM images")
    with pytest.raises(DatabaseQueryError, match="no such table"):
        await newer_client.sql("SELECT * FROM not_a_table")


# ------------------------------------------------------------------------------------------- time bounds
async def test_runaway_query_is_interrupted_and_client_stays_usable(site: DemoSite) -> None:
    async with AsyncClient(**site.settings_kwargs(), query_timeout=0.5) as client:
        started = time.perf_counter()
        with pytest.raises(QueryTimeoutError, match=r"0\.5 s"):
            await client.sql(RUNAWAY)
        assert time.perf_counter() - started < 5
        assert len(await client.images.list(limit=2)) == 2
        assert (await client.sql("SELECT 1 AS one"))["one"].tolist() == [1]


async def test_cancelled_query_is_interrupted_and_leaves_pool_usable(site: DemoSite) -> None:
    async with AsyncClient(**site.settings_kwargs(), query_timeout=60, pool_size=1) as client:
        task = asyncio.create_task(client.sql(RUNAWAY))
        await asyncio.sleep(0.3)
        task.cancel()
        started = time.perf_counter()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.perf_counter() - started < 5
        # pool_size=1: this only works if the cancelled query gave its connection back, idle.
        assert len(await asyncio.wait_for(client.images.list(limit=1), 10)) == 1


# ------------------------------------------------------------------------------------------ live writers
def _writer(path: str, stop_at: float, ready: Any) -> None:
    conn = sqlite3.connect(path, timeout=30)
    start = conn.execute("SELECT MAX(id) FROM images").fetchone()[0]
    ready.set()
    i = 0
    while time.time() < stop_at:
        i += 1
        with conn:
            conn.execute(
                "INSERT INTO images (id, path, ms_path, created_at, type) VALUES (?, ?, NULL, ?, 'image')",
                (start + i, f"/stage/new/{i}.fits", time.time()),
            )
            # Hold the write lock a moment, as a pipeline transaction would.
            time.sleep(0.002)
    conn.close()


async def test_reads_succeed_while_another_process_writes(tmp_path: Path) -> None:
    site = build_demo_site(tmp_path)
    with closing(sqlite3.connect(site.products_db)) as conn:
        before = conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    writer = ctx.Process(target=_writer, args=(str(site.products_db), time.time() + 3.0, ready))
    writer.start()
    try:
        assert ready.wait(30)
        async with AsyncClient(**site.settings_kwargs()) as client:
            seen = []
            while writer.is_alive():
                frame, stats = await asyncio.gather(client.images.list(), client.stats())
                seen.append(len(frame))
                assert stats.images_total >= before
            final = await client.images.list()
    finally:
        writer.join(30)
    assert writer.exitcode == 0
    assert len(seen) >= 3 and seen == sorted(seen), "reads see a growing table, never fail"
    assert seen[-1] > before
    with closing(sqlite3.connect(site.products_db)) as conn:
        assert len(final) == conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]


# --------------------------------------------------------------------------------------------- shutdown
async def test_aclose_leaves_no_worker_thread_and_closed_client_says_so(site: DemoSite) -> None:
    before = live_threads()
    client = AsyncClient(**site.settings_kwargs())
    await asyncio.gather(
        client.images.list(), client.sources.measurements(), client.cal.list(), client.stats()
    )
    assert len(live_threads() - before) >= 2  # connection and Arrow workers were running
    await client.aclose()
    await until_no_new_threads(before)
    assert client.closed
    with pytest.raises(ClientClosedError, match="closed"):
        await client.images.list()
    await client.aclose()  # closing twice is harmless


# --------------------------------------------------------------------------------- Arrow type fallback
async def test_bulk_read_survives_a_value_of_another_type(tmp_path: Path) -> None:
    """ADBC infers column types from the first rows; a later string in a REAL column must not fail the call."""
    site = build_demo_site(tmp_path)
    with closing(sqlite3.connect(site.products_db)) as conn, conn:
        n = conn.execute("SELECT COUNT(*) FROM photometry").fetchone()[0]
        rows = [
            (f"S{i % 50}", f"/img/{i}.fits", 10.0, 54.0, 0.01 * (i % 7), 40000.0 + i) for i in range(70_000)
        ]
        conn.executemany(
            "INSERT INTO photometry (source_id, image_path, ra_deg, dec_deg, flux_jy, mjd) VALUES (?,?,?,?,?,?)",
            rows,
        )
        conn.execute("UPDATE photometry SET flux_jy = 'n/a' WHERE id = (SELECT MAX(id) FROM photometry)")
    async with AsyncClient(products_db=site.products_db) as client:
        frame = await client.sources.measurements()
    assert len(frame) == n + 70_000
    assert frame["flux_jy"].dtype == "float64"
    assert pd.isna(frame["flux_jy"].iloc[-1])
    assert frame["flux_jy"].iloc[-2] == pytest.approx(0.01 * (69_998 % 7))
