"""PostgreSQL backend against a real server: same frames as SQLite, read-only, timeouts, errors, migrate."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pandas as pd
import pytest

from toolkit import AsyncClient, DatabaseConnectionError, QueryTimeoutError, ReadOnlyError, ValidationError
from toolkit.demo import DemoSite, build_demo_site
from toolkit.migrate import migrate

from ..conftest import ENV_TEST_POSTGRES, PostgresSite


@pytest.fixture
async def pg(postgres_site: PostgresSite) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(**postgres_site.settings_kwargs()) as client:
        yield client


async def test_frames_match_sqlite_column_for_column(pg: AsyncClient, site: DemoSite) -> None:
    async with AsyncClient(**site.settings_kwargs()) as lite:
        for call in (
            lambda c: c.images.list(),
            lambda c: c.ms.list(),
            lambda c: c.jobs.list(),
            lambda c: c.sources.list(),
            lambda c: c.sources.measurements(),
            lambda c: c.qa.images(),
            lambda c: c.qa.ms_list(as_of="2026-11-30T12:00"),
            lambda c: c.sources.variability(),
        ):
            ours, theirs = await call(pg), await call(lite)
            pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=1e-12)
        assert (await pg.images.get(1)) == (await lite.images.get(1))
        assert (await pg.stats()).images_total == (await lite.stats()).images_total


async def test_writes_are_refused_and_the_pool_stays_healthy(pg: AsyncClient) -> None:
    for statement in (
        "INSERT INTO images (id, path) VALUES (999999, 'x')",
        "CREATE TABLE evil (x int)",
        "DELETE FROM images",
    ):
        with pytest.raises(ReadOnlyError, match="read-only"):
            await pg.sql(statement)
    assert len(await pg.images.list(limit=3)) == 3


async def test_statement_timeout_raises_and_the_pool_recovers(postgres_site: PostgresSite) -> None:
    async with AsyncClient(**postgres_site.settings_kwargs(), query_timeout=0.5) as client:
        with pytest.raises(QueryTimeoutError, match="statement timeout"):
            await client.sql("SELECT pg_sleep(3)")
        results = await asyncio.gather(*(client.images.list(limit=2) for _ in range(6)))
        assert all(len(r) == 2 for r in results)


async def test_connection_errors_name_host_and_database_never_the_password(
    postgres_site: PostgresSite,
) -> None:
    admin = os.environ[ENV_TEST_POSTGRES]
    host_port = admin.split("@", 1)[1].split("/", 1)[0]
    with pytest.raises(DatabaseConnectionError) as refused:
        await AsyncClient(products_db="postgresql://someone:s3cret@127.0.0.1:1/site").open()
    assert "127.0.0.1:1/site" in str(refused.value) and "s3cret" not in str(refused.value)
    password = admin.split("@", 1)[0].rsplit(":", 1)[1] if admin.count(":") >= 3 else ""
    with pytest.raises(DatabaseConnectionError, match="no such database") as unknown:
        await AsyncClient(products_db=f"postgresql://postgres:{password}@{host_port}/no_such_db").open()
    assert not password or password not in str(unknown.value)
    if password:  # the server checks passwords over TCP (scripts/with-postgres sets it up so)
        with pytest.raises(DatabaseConnectionError, match="refused these credentials") as wrong:
            await AsyncClient(products_db=f"postgresql://postgres:s3cret@{host_port}/postgres").open()
        assert "s3cret" not in str(wrong.value)


async def test_sessions_sort_in_64_mb_unless_the_server_gives_more(postgres_site: PostgresSite) -> None:
    """The server's default work_mem (4 MB) spilled the per-source sums of 10M rows to disk (17-19 s against
    7 s): the toolkit's sessions raise it, pooled ones again after each release's RESET ALL, and the bulk
    (ADBC) ones too; a higher setting of the site's is kept."""

    async def seen(client: AsyncClient) -> set[str]:
        db = await client._connections.products()
        values = set()
        for _ in range(3):  # each query returns its pooled connection, which is reset
            values.add(str((await client.sql("SHOW work_mem"))["work_mem"].iloc[0]))
            bulk = await db.fetch_frame("SELECT current_setting('work_mem') AS w", (), {"w": "text"})
            values.add(str(bulk["w"].iloc[0]))
        return values

    async with AsyncClient(**postgres_site.settings_kwargs()) as client:
        assert await seen(client) == {"64MB"}
    reader = urllib.parse.urlsplit(postgres_site.url).username
    admin = await asyncpg.connect(postgres_site.admin_url)
    try:
        await admin.execute(f"ALTER ROLE \"{reader}\" SET work_mem = '256MB'")
        async with AsyncClient(**postgres_site.settings_kwargs()) as client:
            assert await seen(client) == {"256MB"}
    finally:
        await admin.execute(f'ALTER ROLE "{reader}" RESET work_mem')
        await admin.close()


async def test_cache_sees_writes_made_on_the_server(postgres_site: PostgresSite) -> None:
    async with AsyncClient(**postgres_site.settings_kwargs()) as client:
        before = await client.images.list(type="pbcor")
        assert (await client.images.list(type="pbcor")).equals(before) and client.cache.stats().hits == 1
        writer = await asyncpg.connect(postgres_site.admin_url)
        try:
            await writer.execute(
                "INSERT INTO images (id, path, type, created_at) VALUES (999001, '/new.fits', 'pbcor', 4102444800)"
            )
            after = await client.images.list(type="pbcor")
            assert len(after) == len(before) + 1
        finally:
            await writer.execute("DELETE FROM images WHERE id = 999001")
            await writer.close()


@pytest.fixture
async def empty_database() -> AsyncIterator[str]:
    admin = os.environ.get(ENV_TEST_POSTGRES)
    if not admin:
        pytest.skip(f"{ENV_TEST_POSTGRES} is not set")
    name = f"contimg_migrate_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    yield f"{admin.rsplit('/', 1)[0]}/{name}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def test_migrate_restarts_without_duplicates(empty_database: str, tmp_path: Path) -> None:
    site = build_demo_site(tmp_path / "site")
    seen: list[tuple[str, int, int]] = []

    def interrupt_in_photometry(table: str, done: int, total: int) -> None:
        seen.append((table, done, total))
        if table == "photometry" and done >= 1000:
            raise KeyboardInterrupt  # the user gives up half way through the biggest table

    with pytest.raises(KeyboardInterrupt):
        await migrate(site.products_db, empty_database, batch_rows=500, progress=interrupt_in_photometry)
    target = await asyncpg.connect(empty_database)
    try:
        finished = {r["table_name"] for r in await target.fetch("SELECT table_name FROM contimg_migration")}
        assert "images" in finished and "photometry" not in finished
        assert await target.fetchval("SELECT to_regclass('photometry') IS NULL")  # rolled back with its copy
        second = await migrate(
            site.products_db, empty_database, batch_rows=500, progress=lambda t, d, n: seen.append((t, d, n))
        )
        assert second.copied["photometry"] == 3200 and "images" in second.skipped
        assert ("photometry", 500, 3200) in seen and ("photometry", 3200, 3200) in seen
        assert await target.fetchval("SELECT COUNT(*) FROM photometry") == 3200
        assert await target.fetchval("SELECT COUNT(*) FROM images") == 300
        third = await migrate(str(site.products_db), empty_database)  # a path as text too
        assert third.copied == {} and "photometry" in third.skipped
        indexes = {r["indexname"] for r in await target.fetch("SELECT indexname FROM pg_indexes")}
        assert {"idx_images_created", "idx_phot_source"} <= indexes
        broken = await target.fetchval(
            "SELECT bp_metrics #>> '{}' FROM calibration_qa WHERE json_typeof(bp_metrics) = 'string'"
        )
        assert broken == "{not json"  # kept, as text, not lost
    finally:
        await target.close()


async def test_migrate_never_overwrites_a_table_it_did_not_make(empty_database: str, site: DemoSite) -> None:
    target = await asyncpg.connect(empty_database)
    try:
        await target.execute("CREATE TABLE images (id bigint PRIMARY KEY, note text)")
        await target.execute("INSERT INTO images VALUES (1, 'somebody else''s row')")
        with pytest.raises(ValidationError, match="already has a table 'images' with other columns"):
            await migrate(site.products_db, empty_database)
        assert await target.fetchval("SELECT note FROM images WHERE id = 1") == "somebody else's row"
    finally:
        await target.close()


def test_contimg_migrate_command(empty_database: str, site: DemoSite) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "toolkit", "migrate", "--to", empty_database, "--from", str(site.products_db)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "copied photometry: 3,200 rows" in result.stdout and "photometry" in result.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "toolkit", "migrate", "--to", "mysql://x", "--from", str(site.products_db)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 1 and "postgresql://" in bad.stderr


async def test_service_status_checks_the_postgresql_database(pg: AsyncClient) -> None:
    check = await pg.services.status("products_db")
    assert check.status == "running" and (check.size_bytes or 0) > 0
    broken = AsyncClient(products_db="postgresql://x:s3cret@127.0.0.1:1/nowhere")  # never opened: it is down
    try:
        down = await broken.services.status("products_db")
        assert down.status == "stopped" and "s3cret" not in down.target
    finally:
        await broken.aclose()


async def test_browser_pages_on_postgresql_as_on_sqlite(pg: AsyncClient, site: DemoSite) -> None:
    """A nullable sort column (noise) pages in the same order on both databases, forward and back."""
    from toolkit.widgets import Browser

    pages: dict[str, list[list[int]]] = {}
    async with AsyncClient(**site.settings_kwargs()) as lite:
        for name, client in (("postgres", pg), ("sqlite", lite)):
            browser = Browser(client)
            await browser.settled()
            view = browser.views["images"]
            view.sort.value = "noise"
            view.descending.value = False
            await browser.settled()
            seen = [list(view.frame["id"])]
            for _ in range(3):
                view.next_page()
                await browser.settled()
                seen.append(list(view.frame["id"]))
            view.previous_page()
            await browser.settled()
            seen.append(list(view.frame["id"]))
            pages[name] = seen
            browser.close()
    assert pages["postgres"] == pages["sqlite"] and pages["sqlite"][4] == pages["sqlite"][2]


async def test_every_tab_panel_and_the_dashboard_work_on_postgresql(pg: AsyncClient) -> None:
    from toolkit.widgets import Browser, Dashboard

    browser = Browser(pg)
    await browser.settled()
    for name, view in browser.views.items():
        assert len(view.frame) > 0 and view.message.value == "", (name, view.message.value)
        view.open_row(0)
        await browser.settled()
        assert browser.panel is not None and browser.panel.status.value == "", (
            name,
            browser.panel.status.value,
        )
    browser.close()
    dashboard = Dashboard(pg)
    await dashboard.settled()
    assert dashboard.refreshes == 1 and "<table" in dashboard.recent.value
    dashboard.close()


@pytest.fixture
async def timestamp_site(postgres_site: PostgresSite, empty_database: str) -> PostgresSite:
    """The demo site in PostgreSQL with its times stored as timestamptz (a site with its own schema)."""
    from toolkit.schema import NEWER

    await migrate(postgres_site.products_db, empty_database)
    conn = await asyncpg.connect(empty_database)
    try:
        for table, columns in NEWER.items():
            for column, kind in columns:
                if kind == "time" and await conn.fetchval(
                    "SELECT 1 FROM information_schema.columns WHERE table_name = $1 AND column_name = $2",
                    table,
                    column,
                ):
                    await conn.execute(
                        f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE timestamptz USING to_timestamp("{column}")'
                    )
    finally:
        await conn.close()
    # Read through the suite's read-only role, which may read every database on the server.
    reader_url = f"{postgres_site.url.rsplit('/', 1)[0]}/{empty_database.rsplit('/', 1)[1]}"
    return PostgresSite(**{**postgres_site.__dict__, "url": reader_url})


async def test_a_schema_with_timestamps_reads_and_filters_like_unix_seconds(
    timestamp_site: PostgresSite, site: DemoSite
) -> None:
    async with (
        AsyncClient(**timestamp_site.settings_kwargs()) as stamped,
        AsyncClient(**site.settings_kwargs()) as lite,
    ):
        for call in (
            lambda c: c.images.list(since="2026-11-30T00:00", until="2026-11-30T06:00"),
            lambda c: c.jobs.list(since="2026-11-30"),
            lambda c: c.qa.images(since="2026-11-30T00:00"),
            lambda c: c.sources.lightcurve(site.transient_source),
        ):
            ours, theirs = await call(stamped), await call(lite)
            assert len(ours) > 0
            times = [c for c in ours.columns if str(ours[c].dtype) == "datetime64[us, UTC]"]
            assert times and [str(theirs[c].dtype) for c in times] == ["datetime64[us, UTC]"] * len(times)
            for column in times:  # PostgreSQL's to_timestamp() rounded a few stored seconds the other way
                assert ((ours[column] - theirs[column]).abs().dropna() <= pd.Timedelta(microseconds=1)).all()
                assert ours[column].isna().equals(theirs[column].isna())
            # Durations are differences of those times: equal to within the same microsecond.
            pd.testing.assert_frame_equal(
                ours.drop(columns=times), theirs.drop(columns=times), check_exact=False, rtol=1e-12, atol=2e-6
            )
        one, other = (await stamped.images.get(1)).created_at, (await lite.images.get(1)).created_at
        assert one is not None and other is not None and abs((one - other).total_seconds()) <= 1e-6


async def test_browser_pages_through_timestamp_columns(timestamp_site: PostgresSite, site: DemoSite) -> None:
    from toolkit.widgets import Browser

    pages = {}
    async with (
        AsyncClient(**timestamp_site.settings_kwargs()) as stamped,
        AsyncClient(**site.settings_kwargs()) as lite,
    ):
        for name, client in (("stamped", stamped), ("sqlite", lite)):
            browser = Browser(client)
            await browser.settled()
            view = browser.views["images"]
            view.since.value = "2026-11-29T12:00"
            await browser.settled()
            ids = [list(view.frame["id"])]
            view.next_page()
            await browser.settled()
            ids.append(list(view.frame["id"]))
            assert view.message.value == "", view.message.value
            pages[name] = ids
            browser.close()
    assert pages["stamped"] == pages["sqlite"] and pages["sqlite"][1]


async def test_registry_and_queue_on_postgresql_answer_as_on_sqlite(pg: AsyncClient, site: DemoSite) -> None:
    async with AsyncClient(**site.settings_kwargs()) as lite:
        pd.testing.assert_frame_equal(await pg.cal.list(), await lite.cal.list())
        ms_path = str((await lite.ms.list(stage="imaged", limit=1))["path"].iloc[0])
        assert [t.path for t in (await pg.ms.get(ms_path)).cal_tables] == [
            t.path for t in (await lite.ms.get(ms_path)).cal_tables
        ]
        assert (await pg.queue.stats(as_of="2026-11-30T12:00")) == (
            await lite.queue.stats(as_of="2026-11-30T12:00")
        )
        pd.testing.assert_frame_equal(await pg.queue.list(), await lite.queue.list())
        group = (await lite.queue.list(state="collecting"))["group_id"].iloc[0]
        assert (await pg.queue.get(group)) == (await lite.queue.get(group))
        pd.testing.assert_frame_equal(
            await pg.queue.stuck("1 day", as_of="2026-11-30T12:00"),
            await lite.queue.stuck("1 day", as_of="2026-11-30T12:00"),
        )
        status = (await pg.services.status()).set_index("name")
        assert set(status.loc[["products_db", "cal_registry_db", "queue_db"], "status"]) == {"running"}


async def test_migrate_refuses_a_source_that_is_not_a_path(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="must be a path"):
        await migrate(123, "postgresql://localhost/x")  # type: ignore[arg-type]
    (tmp_path / "products.sqlite3").write_bytes(b"")
    with pytest.raises(ValidationError, match="postgresql:// URL"):
        await migrate(tmp_path / "products.sqlite3", None)  # type: ignore[arg-type]
