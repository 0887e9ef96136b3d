"""One regression test per reported hole: each failed before its fix (stale reads after BEGIN, unbounded grep,
leaked threads, slow closing, raw exceptions, a FIFO hang, an unbounded printf, services after close)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sqlite3
import time
from pathlib import Path

import pytest

from toolkit import (
    AsyncClient,
    ClientClosedError,
    DatabaseConnectionError,
    DatabaseQueryError,
    QueryTimeoutError,
    ReadOnlyError,
    ValidationError,
)
from toolkit.cli import main as cli_main
from toolkit.db.sqlite import SQLiteBackend
from toolkit.demo import DemoSite

from ..threads import live_threads, until_no_new_threads
from .pipeline import pipeline_job


def _a_run_id(site: DemoSite) -> str:
    """A run id whose log file the demo site wrote."""
    return sorted(site.log_dir.glob("*.log"))[0].stem


# ------------------------------------------------------------------------------- 1. no pinned snapshots
@pytest.mark.parametrize(
    "statement",
    [
        "BEGIN",
        "BEGIN IMMEDIATE",
        "begin deferred transaction",
        "/* hi */ SAVEPOINT s",
        "COMMIT",
        "END",
        "ROLLBACK",
    ],
)
async def test_transaction_control_is_refused(newer_client: AsyncClient, statement: str) -> None:
    with pytest.raises(ReadOnlyError, match="transaction control"):
        await newer_client.sql(statement)


async def test_after_a_refused_begin_answers_stay_fresh_and_checkpoints_finish(
    writable_site: DemoSite,
) -> None:
    async with AsyncClient(**writable_site.settings_kwargs(), pool_size=1) as client:
        before = int((await client.sql("SELECT COUNT(*) AS n FROM images"))["n"].iloc[0])
        with pytest.raises(ReadOnlyError):
            await client.sql("BEGIN")
        # The pipeline's own runbook: insert, then truncate the WAL. A pinned read transaction made it busy.
        busy = await asyncio.to_thread(pipeline_job, writable_site.products_db, "images", 1, "TRUNCATE")
        after = int((await client.sql("SELECT COUNT(*) AS n FROM images"))["n"].iloc[0])
    assert (busy, after) == (0, before + 1)


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        ("PRAGMA table_info(images)", True),
        ("PRAGMA user_version", True),
        ("PRAGMA journal_mode", True),
        ("PRAGMA wal_checkpoint", False),  # no argument, and still acts
        ("PRAGMA optimize", False),
        ("PRAGMA journal_mode = delete", False),
        ("PRAGMA writable_schema = 1", False),
    ],
)
async def test_only_reporting_pragmas_run(newer_client: AsyncClient, statement: str, allowed: bool) -> None:
    if allowed:
        assert len(await newer_client.sql(statement)) >= 1
    else:
        with pytest.raises(ReadOnlyError):
            await newer_client.sql(statement)


# ------------------------------------------------------------------------------------- 2. bounded grep
async def test_grep_refuses_unbounded_context_at_once(newer_client: AsyncClient, site: DemoSite) -> None:
    run_id = _a_run_id(site)
    started = time.perf_counter()
    for context in (10**9, -1, 10_001, 1.5, True):
        with pytest.raises(ValidationError, match="context"):
            await newer_client.logs.grep(run_id, "x", context=context)  # type: ignore[arg-type]
    assert time.perf_counter() - started < 1
    assert len(await newer_client.logs.grep(run_id, ".", context=10_000)) > 0


@pytest.fixture
def catastrophic_log(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "job-slow.log").write_text(("a" * 40 + "b\n") * 20)
    return folder


async def test_a_catastrophic_pattern_stops_at_the_timeout_and_the_loop_stays_free(
    site: DemoSite, catastrophic_log: Path
) -> None:
    lags: list[float] = []

    async def ticker() -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - started - 0.01)

    async with AsyncClient(
        **{**site.settings_kwargs(), "log_dirs": [catastrophic_log]}, query_timeout=0.5
    ) as client:
        tick = asyncio.create_task(ticker())
        started = time.perf_counter()
        with pytest.raises(QueryTimeoutError, match="query timeout"):
            await client.logs.grep("job-slow", "(a|aa)+$")
        elapsed = time.perf_counter() - started
        tick.cancel()
        assert len(await client.logs.grep("job-slow", "b$")) == 20  # the client is fine afterwards
    assert 0.4 < elapsed < 2.0
    assert max(lags) < 0.2  # the search ran off the loop, without the GIL held for its whole length


async def test_grep_caps_matches_when_none_are_asked_for(site: DemoSite, tmp_path: Path) -> None:
    from toolkit.domains.logs import MAX_MATCHES, GrepTruncatedWarning

    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "job-many.log").write_text("hit\n" * (MAX_MATCHES + 10))
    async with AsyncClient(**{**site.settings_kwargs(), "log_dirs": [folder]}) as client:
        with pytest.warns(GrepTruncatedWarning):
            assert len(await client.logs.grep("job-many", "hit")) == MAX_MATCHES
        assert len(await client.logs.grep("job-many", "hit", max_matches=5)) == 5
        with pytest.raises(ValidationError, match="n must be"):
            await client.logs.tail("job-many", 10**9)


# ------------------------------------------------------------------------------- 3. and 4. closing
async def test_closing_while_the_first_open_is_under_way_leaks_no_thread(site: DemoSite) -> None:
    before = live_threads()
    for delay in (0, 0.001, 0.005, 0.01, 0.02, 0.05):
        client = AsyncClient(**site.settings_kwargs())
        opening = asyncio.create_task(client.open())
        await asyncio.sleep(delay)
        await client.aclose()
        with contextlib.suppress(ClientClosedError):
            await opening
        with pytest.raises(ClientClosedError):
            await client.images.list()
    await until_no_new_threads(before)


SLOW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) SELECT max(x) FROM c"


async def test_close_interrupts_a_long_query_within_a_second(site: DemoSite) -> None:
    before = live_threads()
    client = AsyncClient(**site.settings_kwargs(), query_timeout=60)
    await client.open()
    running = asyncio.create_task(client.sql(SLOW))
    await asyncio.sleep(0.3)
    started = time.perf_counter()
    await client.aclose()
    closed_in = time.perf_counter() - started
    with pytest.raises(ClientClosedError):
        await running
    assert closed_in < 1.0
    await until_no_new_threads(before)


def _busy_readers() -> int:
    """Reader processes of this process that are using the CPU right now (state R in /proc)."""
    busy = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if b"sqlite_arrow_child" in cmdline and int(fields[1]) == os.getpid() and fields[0] == "R":
            busy += 1
    return busy


async def _until_no_busy_reader(seconds: float) -> float:
    started = time.perf_counter()
    while await asyncio.to_thread(_busy_readers) and time.perf_counter() - started < seconds:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    return time.perf_counter() - started


@pytest.mark.parametrize("stop", ["cancel", "close"])
async def test_a_stopped_bulk_read_stops_reading(site: DemoSite, stop: str) -> None:
    backend = await SQLiteBackend.open(
        site.products_db, label="products database", origin="test", query_timeout=60, pool_size=2
    )
    reading = asyncio.create_task(
        backend.fetch_frame("SELECT x FROM (" + SLOW.replace("max(x)", "x") + ") WHERE x < 0", [], {})
    )
    await asyncio.sleep(0.5)
    assert await asyncio.to_thread(_busy_readers) == 1
    started = time.perf_counter()
    if stop == "cancel":
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
    else:
        await backend.aclose()
        with pytest.raises(ClientClosedError):
            await reading
    assert time.perf_counter() - started < 1.0
    assert await _until_no_busy_reader(1.0) < 1.0
    if stop == "cancel":
        assert len(await backend.fetch_frame("SELECT id FROM images", [], {})) > 0  # the next read is normal
        await backend.aclose()


# --------------------------------------------------------------------------------- 5. our errors only
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.images.list(since="0001-01-01"), "supported range of dates, 1677-09-21 to 2262-04-11"),
        (lambda c: c.images.list(until="9999-12-31"), "supported range"),
        (lambda c: c.images.list(type=5), "type must be"),
        (lambda c: c.queue.list(state=5), "state must be"),
        (lambda c: c.images.list(limit=10**30), "limit must be"),
        (lambda c: c.images.get(2**70), "64-bit"),
        (lambda c: c.images.get("9" * 40), "64-bit"),
        (lambda c: c.sql("SELECT ?", [2**70]), "64-bit"),
        (lambda c: c.provenance(2**70), "64-bit"),
        (lambda c: c.sql("SELECT 1", max_rows=0), "max_rows"),
        (lambda c: c.sql("SELECT value FROM json_each('[1,2,3]')", max_rows=2), "more than max_rows=2"),
    ],
)
async def test_ordinary_looking_input_gets_a_validation_error(
    newer_client: AsyncClient, call, message
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=message):
        await call(newer_client)


@pytest.mark.parametrize("value", [math.inf, -1, 0, math.nan, 10**12])
def test_timeouts_must_be_finite_and_positive(
    site: DemoSite, value: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValidationError, match="query_timeout"):
        AsyncClient(**site.settings_kwargs(), query_timeout=value)
    monkeypatch.setenv("CONTIMG_QUERY_TIMEOUT", str(value))
    with pytest.raises(ValidationError, match="query_timeout"):
        AsyncClient(products_db=site.products_db)
    with pytest.raises(ValidationError, match="cache_ttl"):
        AsyncClient(products_db=site.products_db, query_timeout=1, cache_ttl=value)


def test_the_command_line_prints_one_line_for_an_unexpected_error(
    site: DemoSite, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import toolkit.cli

    def broken(ns: object) -> object:
        raise KeyError("a bug of ours")

    for name, value in site.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(toolkit.cli, "_handler", broken)
    assert cli_main(["stats"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: KeyError" in err and "--debug" in err
    with pytest.raises(KeyError):
        cli_main(["--debug", "stats"])


# ------------------------------------------------------------------------------- 6. opening is bounded
async def test_a_fifo_in_place_of_the_database_fails_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "products.sqlite3"
    os.mkfifo(fifo)
    started = time.perf_counter()
    with pytest.raises(DatabaseConnectionError, match="not a regular file"):
        await AsyncClient(products_db=fifo, connect_timeout=2).open()
    assert time.perf_counter() - started < 1.0


# ------------------------------------------------------------------------- 7. one call cannot run away
@pytest.mark.parametrize(
    "statement",
    [
        "SELECT printf('%.*c', 1000000000, 'x')",
        "SELECT printf('%1000000000d', 1)",
        "SELECT printf('%d %*c', 5, 1000000000, 'x')",
        "SELECT format('%*s', 2000000000, 'x')",
        "SELECT length(zeroblob(2000000000))",
        "SELECT length(replace(hex(zeroblob(60000000)), '0', 'xyz'))",
    ],
)
async def test_a_single_huge_function_call_is_refused_within_the_timeout(
    site: DemoSite, statement: str
) -> None:
    async with AsyncClient(**site.settings_kwargs(), query_timeout=2) as client:
        started = time.perf_counter()
        with pytest.raises(DatabaseQueryError):
            await client.sql(statement)
        assert time.perf_counter() - started < 2.5
        frame = await client.sql(
            "SELECT length(printf('%.*c', 500000, 'x')) AS n, printf('%5.2f|%-4s|', 3.14159, 'ab') AS s"
        )
        assert (int(frame["n"].iloc[0]), frame["s"].iloc[0]) == (500000, " 3.14|ab  |")


# --------------------------------------------------------------------------- 9. every area after close
async def test_every_area_raises_client_closed_after_close(site: DemoSite) -> None:
    client = AsyncClient(**site.settings_kwargs())
    await client.open()
    await client.aclose()
    calls = [
        client.images.list(),
        client.ms.list(),
        client.sources.list(),
        client.jobs.list(),
        client.cal.list(),
        client.qa.images(),
        client.queue.stats(),
        client.services.status(),
        client.logs.tail(_a_run_id(site)),
        client.stats(),
        client.sql("SELECT 1"),
        client.provenance(1),
    ]
    for call in calls:
        with pytest.raises(ClientClosedError):
            await call


# ------------------------------------------------------------------------ 10. the files SQLite makes
def test_reading_creates_no_file_but_sqlites_own_wal_companions(tmp_path: Path, site: DemoSite) -> None:
    rollback = tmp_path / "rollback.sqlite3"
    with sqlite3.connect(rollback) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("CREATE TABLE ms_index (path TEXT)")
    conn.close()
    wal = tmp_path / "wal" / "products.sqlite3"
    wal.parent.mkdir()
    with sqlite3.connect(wal) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE ms_index (path TEXT)")
    conn.close()
    assert sorted(p.name for p in wal.parent.iterdir()) == ["products.sqlite3"]  # the writer cleaned up
    for db in (rollback, wal):
        content = db.read_bytes()
        names_before = {p.name for p in db.parent.iterdir()}

        async def read(db: Path = db) -> None:
            async with AsyncClient(products_db=db) as client:
                await client.sql("SELECT COUNT(*) FROM ms_index")

        asyncio.run(read())
        created = {p.name for p in db.parent.iterdir()} - names_before
        assert db.read_bytes() == content
        if db is rollback:
            assert created == set()
        else:  # SQLite's shared-memory index and an empty log: what any reader of a WAL database makes
            assert created == {"products.sqlite3-wal", "products.sqlite3-shm"}
            assert (wal.parent / "products.sqlite3-wal").stat().st_size == 0


async def test_a_connection_left_in_a_transaction_never_goes_back_to_the_pool(
    site: DemoSite, caplog: pytest.LogCaptureFixture
) -> None:
    # The authorizer refuses BEGIN from any statement; this is the safety net behind it, so the test opens a
    # transaction past the authorizer, as a future bug might.
    backend = await SQLiteBackend.open(
        site.products_db, label="products database", origin="test", query_timeout=5, pool_size=1
    )
    try:
        worker = await backend._acquire()
        conn = worker.conn
        assert conn is not None

        def begin() -> None:
            conn.set_authorizer(None)
            conn.execute("BEGIN")
            conn.execute("SELECT COUNT(*) FROM images").fetchall()

        await worker.run(begin)
        assert conn.in_transaction
        await backend._release(worker)
        assert "left in a transaction; rolled back" in caplog.text
        assert worker not in backend._all and worker not in backend._idle
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):  # rolled back by its close
            _ = conn.in_transaction
        assert await backend.fetch_rows("SELECT 1") == [(1,)]  # a fresh connection serves the next call
    finally:
        await backend.aclose()


async def test_grep_refuses_to_return_more_than_a_million_lines(site: DemoSite, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "job-wide.log").write_text("x\n" * 1_100_000)
    async with AsyncClient(**{**site.settings_kwargs(), "log_dirs": [folder]}) as client:
        with pytest.raises(ValidationError, match="more than 1,000,000 lines"):
            await client.logs.grep("job-wide", "x", context=1, max_matches=1_000_000)
        assert len(await client.logs.grep("job-wide", "x", context=10, max_matches=200)) == 210


async def test_a_file_name_too_long_for_the_file_system_is_our_error(
    newer_client: AsyncClient, tmp_path: Path
) -> None:
    from toolkit import FileNotAccessibleError

    long_name = str(tmp_path / ("x" * 5000))
    with pytest.raises(FileNotAccessibleError, match="cannot read"):
        await newer_client.notes.import_(long_name)
    with pytest.raises(FileNotAccessibleError, match="cannot write"):
        await newer_client.notes.export(long_name + ".jsonl")
    with pytest.raises(FileNotAccessibleError, match="cannot write"):
        (await newer_client.qa.report()).to_html(long_name + ".html")
