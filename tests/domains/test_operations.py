"""Operations: the ingest queue, service health against real servers, the result cache, provenance."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from toolkit import AsyncClient, Client, ConfigurationError, RecordNotFoundError, ValidationError
from toolkit.demo import DemoSite

from ..conftest import NOW

AS_OF = NOW.isoformat()


def rows(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


# ------------------------------------------------------------------------------------------ queue
async def test_queue_stats_list_and_get_match_the_database(newer_client: AsyncClient, site: DemoSite) -> None:
    assert site.queue_db is not None
    stats = await newer_client.queue.stats(as_of=AS_OF)
    assert stats.by_state == dict(
        rows(site.queue_db, "SELECT state, COUNT(*) FROM ingest_queue GROUP BY state")
    )
    assert stats.retries == rows(site.queue_db, "SELECT SUM(retry_count) FROM ingest_queue")[0][0] > 0
    ((oldest, received),) = rows(
        site.queue_db,
        "SELECT group_id, received_at FROM ingest_queue WHERE state = 'pending' ORDER BY received_at LIMIT 1",
    )
    assert stats.oldest_pending == oldest
    assert stats.oldest_pending_age.total_seconds() == pytest.approx(NOW.timestamp() - received)
    failed = await newer_client.queue.list(state="failed")
    assert set(failed["group_id"]) == {
        g for (g,) in rows(site.queue_db, "SELECT group_id FROM ingest_queue WHERE state = 'failed'")
    }
    everything = await newer_client.queue.list()
    assert everything["received_at"].is_monotonic_decreasing and len(everything) == stats.total
    collecting = everything[everything["state"] == "collecting"].iloc[0]
    group = await newer_client.queue.get(collecting["group_id"])
    present = {
        i
        for (i,) in rows(
            site.queue_db, "SELECT subband_idx FROM subband_files WHERE group_id = ?", group.group_id
        )
    }
    assert set(group.subbands) == present and set(group.missing) == set(range(16)) - present and group.missing
    assert collecting["missing_subbands"] == len(group.missing) and len(group.files) == len(present)


async def test_queue_stuck_and_bad_input(newer_client: AsyncClient, site: DemoSite) -> None:
    assert site.queue_db is not None
    stuck = await newer_client.queue.stuck("1 day", as_of=AS_OF)
    expected = {
        g
        for g, state, updated in rows(site.queue_db, "SELECT group_id, state, last_update FROM ingest_queue")
        if state not in ("completed", "failed") and NOW.timestamp() - updated > 86400
    }
    assert set(stuck["group_id"]) == expected and len(expected) == 2
    assert (stuck["idle"] > pd.Timedelta(days=1)).all()
    # A bare number is seconds, as every duration in the toolkit.
    assert set((await newer_client.queue.stuck(1800, as_of=AS_OF))["group_id"]) >= expected
    assert (await newer_client.queue.stuck(86400, as_of=AS_OF)).equals(stuck)
    with pytest.raises(
        ValidationError, match=r"unknown state 'stalled'.*collecting, completed, failed, in_progress, pending"
    ):
        await newer_client.queue.list(state="stalled")
    for bad in ("soon", "", "nan", -5, 0, float("inf"), "1e30d", True):
        with pytest.raises(ValidationError, match="older_than"):
            await newer_client.queue.stuck(bad)  # type: ignore[arg-type]
    with pytest.raises(RecordNotFoundError):
        await newer_client.queue.get("1999-01-01T00:00:00")


async def test_queue_not_configured_says_how_to(site: DemoSite) -> None:
    async with AsyncClient(products_db=site.products_db) as client:
        with pytest.raises(ConfigurationError, match="PIPELINE_QUEUE_DB"):
            await client.queue.stats()


# --------------------------------------------------------------------------------------- services
@asynccontextmanager
async def servers() -> AsyncIterator[dict[str, int]]:
    """A healthy HTTP server, one answering 503, one that accepts and never answers, and a refused port."""
    hung: list[asyncio.StreamWriter] = []

    async def healthy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def unhealthy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hung.append(writer)  # read nothing, answer nothing

    started = [await asyncio.start_server(h, "127.0.0.1", 0) for h in (healthy, unhealthy, slow)]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        refused = probe.getsockname()[1]  # closed again below: nothing listens there
    ports = {
        name: s.sockets[0].getsockname()[1]
        for name, s in zip(("healthy", "unhealthy", "slow"), started, strict=True)
    }
    try:
        yield {**ports, "refused": refused}
    finally:
        for w in hung:
            w.close()
        for s in started:
            s.close()
            await s.wait_closed()


async def test_service_status_against_real_servers(site: DemoSite, tmp_path: Path) -> None:
    async with servers() as ports:
        services = {
            "api": f"http://127.0.0.1:{ports['healthy']}/health",
            "broken": f"http://127.0.0.1:{ports['unhealthy']}/health",
            "slow_a": f"http://127.0.0.1:{ports['slow']}/health",
            "slow_b": f"tcp://127.0.0.1:{ports['slow']}",
            "gone": f"tcp://127.0.0.1:{ports['refused']}",
        }
        missing_dir = tmp_path / "no-such-logs"
        async with AsyncClient(
            **{**site.settings_kwargs(), "log_dirs": (site.log_dir, missing_dir)}, services=services
        ) as client:
            started = time.perf_counter()
            status = await client.services.status(check_timeout=0.5)
            elapsed = time.perf_counter() - started
            by_name = status.set_index("name")
            assert by_name.loc["api", "status"] == "running"
            assert by_name.loc["broken", "status"] == "degraded" and "503" in by_name.loc["broken", "error"]
            assert (
                by_name.loc["slow_a", "status"] == "error"
                and "within 0.5 s" in by_name.loc["slow_a", "error"]
            )
            assert by_name.loc["slow_b", "status"] == "running"  # TCP accepts: that is all a TCP check asks
            assert by_name.loc["gone", "status"] == "stopped"
            assert (
                by_name.loc["products_db", "status"] == "running"
                and by_name.loc["products_db", "size_bytes"] > 0
            )
            assert by_name.loc["queue_db", "status"] == "running"
            assert (
                by_name.loc["log_dir[1]", "status"] == "error" and by_name.loc["log_dir[0]", "free_bytes"] > 0
            )
            # Two checks wait out their 0.5 s timeout; run one after the other they would take 1 s or more.
            assert elapsed < 1.0
            one = await client.services.status(ports["refused"])
            assert one.name == "gone" and one.status == "stopped"
            with pytest.raises(RecordNotFoundError, match="known checks"):
                await client.services.status("nope")


async def test_a_corrupt_database_is_an_error_check(tmp_path: Path, site: DemoSite) -> None:
    bad = tmp_path / "queue.sqlite3"
    bad.write_bytes(b"this is not sqlite" * 100)
    async with AsyncClient(products_db=site.products_db, queue_db=bad) as client:
        check = await client.services.status("queue_db")
        assert check.status == "error" and "cannot be read as SQLite" in (check.error or "")
    assert bad.read_bytes() == b"this is not sqlite" * 100


def test_bad_service_settings() -> None:
    with pytest.raises(ValidationError, match="not tcp://host:port"):
        AsyncClient(products_db="x.sqlite3", services="api=ftp://h:1")


# ------------------------------------------------------------------------------------------ cache
async def test_cache_hits_copies_and_sees_other_writers(site: DemoSite, tmp_path: Path) -> None:
    copy = tmp_path / "products.sqlite3"
    shutil.copy(site.products_db, copy)
    async with AsyncClient(products_db=copy) as client:
        first = await client.images.list(type="image")
        second = await client.images.list(type="image")
        assert client.cache.stats().hits == 1 and first.equals(second)
        second.loc[0, "path"] = "changed by the caller"
        second.pop("noise_jy")
        third = await client.images.list(type="image")
        assert third.equals(first)
        # Another process writes: the next call must see it.
        code = (
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "c.execute(\"INSERT INTO images (path, type, created_at) VALUES ('/new.fits', 'image', 4102444800)\"); c.commit()"
        )
        writer = await asyncio.create_subprocess_exec(sys.executable, "-c", code, str(copy))
        assert await writer.wait() == 0
        fourth = await client.images.list(type="image")
        assert len(fourth) == len(first) + 1 and fourth["path"].iloc[0] == "/new.fits"
        stats = await client.stats()
        assert (
            (await client.stats()).images_total
            == stats.images_total
            == rows(copy, "SELECT COUNT(*) FROM images")[0][0]
        )


async def test_cache_is_bounded_in_bytes_expires_and_invalidates(site: DemoSite) -> None:
    async with AsyncClient(**site.settings_kwargs(), cache_bytes=60_000, cache_ttl=0.3) as client:
        for limit in (20, 40, 60, 80, 100):
            await client.images.list(limit=limit)
            assert client.cache.stats().bytes <= 60_000
        assert client.cache.stats().entries < 5  # the oldest were evicted
        await client.ms.list(limit=5)
        await client.ms.list(limit=5)
        assert client.cache.stats().hits == 1
        assert client.cache.invalidate("ms:*") == 1 and client.cache.invalidate("ms:*") == 0
        await client.images.list(limit=100)
        hits = client.cache.stats().hits
        await asyncio.sleep(0.35)
        await client.images.list(limit=100)
        assert client.cache.stats().hits == hits  # expired: recomputed
        client.cache.clear()
        assert client.cache.stats().entries == 0 and client.cache.stats().bytes == 0
    async with AsyncClient(**site.settings_kwargs(), cache_bytes=0) as client:
        await client.images.list(limit=5)
        await client.images.list(limit=5)
        assert client.cache.stats().entries == 0 and not client.cache.stats().enabled


# ------------------------------------------------------------------------------------- provenance
async def test_provenance_of_an_image(newer_client: AsyncClient, site: DemoSite) -> None:
    ((image_id, ms_path),) = rows(
        site.products_db, "SELECT id, ms_path FROM images WHERE type = 'image' ORDER BY id LIMIT 1"
    )
    chain = await newer_client.provenance(image_id)
    assert chain.kind == "image" and chain.ms_path == ms_path and chain.ms is not None
    assert chain.job is not None and chain.job.ms_path == ms_path
    assert (chain.log is not None and chain.log.endswith(".log")) or chain.log == "inline"
    assert [t.table_type for t in chain.cal_tables_applied] == ["K", "BA", "BP", "GA", "GP", "2G", "FLUX"]
    counts = dict(
        rows(
            site.products_db,
            "SELECT image_path, COUNT(*) FROM photometry WHERE image_path IN (SELECT path FROM images WHERE ms_path = ?) GROUP BY image_path",
            ms_path,
        )
    )
    assert {
        p: n for p, n in zip(chain.images["path"], chain.images["photometry_rows"], strict=True) if n
    } == counts
    assert set(chain.images["path"]) == {
        p for (p,) in rows(site.products_db, "SELECT path FROM images WHERE ms_path = ?", ms_path)
    }
    assert chain.to_dict()["ms_path"] == ms_path and "Provenance of image" in chain._repr_html_()
    by_run = await newer_client.provenance(chain.job.run_id)
    assert by_run.kind == "run id" and by_run.ms_path == ms_path
    assert (await newer_client.provenance(ms_path)).kind == "ms"


async def test_provenance_shows_missing_links(newer_client: AsyncClient, site: DemoSite) -> None:
    ((mosaic,),) = rows(site.products_db, "SELECT path FROM images WHERE type = 'mosaic' LIMIT 1")
    chain = await newer_client.provenance(mosaic)
    assert chain.ms is None and chain.job is None and any("no MS" in m for m in chain.missing)
    solved_from = rows(site.cal_registry_db, "SELECT DISTINCT source_ms_path FROM caltables")[0][0]  # type: ignore[arg-type]
    assert (await newer_client.provenance(solved_from)).cal_tables_solved_from_ms
    with pytest.raises(RecordNotFoundError, match="not an image path, an MS path or a run id"):
        await newer_client.provenance("/no/such/thing")


def test_blocking_client_has_the_operations_areas(site: DemoSite) -> None:
    with Client(**site.settings_kwargs()) as client:
        assert client.queue.stats().total > 0
        assert client.provenance(1).kind == "image"
        assert set(client.services.status()["name"]) >= {"products_db", "queue_db"}
        client.images.list(limit=3)
        client.images.list(limit=3)
        assert client.cache.stats().hits >= 1


def test_command_line_queue_and_services(site: DemoSite) -> None:
    import os
    import subprocess

    env = {**os.environ, **site.env}

    def contimg(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "toolkit", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    failed = contimg("queue", "--state", "failed", "--format", "csv", "--columns", "group_id,state")
    assert failed.returncode == 0 and failed.stdout.count("failed") == 3
    services = contimg("services", "--format", "json")
    assert services.returncode == 0 and '"name":"queue_db"' in services.stdout
    bad = contimg("queue", "--state", "stalled")
    assert bad.returncode == 1 and "unknown state 'stalled'" in bad.stderr
