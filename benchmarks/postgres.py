"""PostgreSQL benchmarks (issue: PostgreSQL backend): the 1M-row frame against psycopg, and 16 concurrent clients
on PostgreSQL against the same load on SQLite. Needs the throwaway server of scripts/with-postgres."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
import urllib.parse
import warnings
from typing import Any

import asyncpg
import pandas as pd

from toolkit import AsyncClient
from toolkit.demo import DemoSite
from toolkit.migrate import migrate

from .harness import BASELINE_SQL, Result, best_of, report

CLIENTS = 16
ROUNDS = 3


READER = "contimg_bench_reader"


async def _database(admin: str, site: DemoSite) -> str:
    """The scaled site migrated into PostgreSQL; the URL of a read-only role on it (as the README says)."""
    url = f"{admin.rsplit('/', 1)[0]}/contimg_bench"
    password = secrets.token_hex(12)
    conn = await asyncpg.connect(admin)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'contimg_bench'"):
            await conn.execute("CREATE DATABASE contimg_bench")
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", READER):
            await conn.execute(f"CREATE ROLE {READER} LOGIN")
        await conn.execute(f"ALTER ROLE {READER} PASSWORD '{password}'")
        await conn.execute(f"GRANT pg_read_all_data TO {READER}")
    finally:
        await conn.close()
    started = time.perf_counter()
    summary = await migrate(site.products_db, url)
    if summary.copied:
        print(
            f"migrated the scaled site into PostgreSQL in {time.perf_counter() - started:.1f} s", flush=True
        )
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=f"{READER}:{password}@{parts.hostname}:{parts.port}").geturl()


async def _one_user(settings: dict[str, Any], source_ids: list[str], user: int) -> int:
    """One notebook user: list images, open a few light curves, grade last night's images. Returns calls made."""
    calls = 0
    async with AsyncClient(**settings, cache_bytes=0) as client:
        for r in range(ROUNDS):
            await client.images.list(limit=100, offset=(user * 37 + r) % 500)
            for sid in source_ids[(user * 5 + r) % len(source_ids) :][:5]:
                await client.sources.lightcurve(sid)
            await client.qa.images(limit=500)
            calls += 7
    return calls


async def _load(settings: dict[str, Any], source_ids: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    counts = await asyncio.gather(*(_one_user(settings, source_ids, u) for u in range(CLIENTS)))
    return time.perf_counter() - started, sum(counts)


async def run(site: DemoSite) -> bool:
    admin = os.environ.get("CONTIMG_TEST_POSTGRES")
    if not admin:
        print(
            "\nPostgreSQL benchmarks skipped: no server (run through scripts/with-postgres, as `make bench` does)"
        )
        return True
    url = await _database(admin, site)
    results: list[Result] = []
    pg_settings = {**site.settings_kwargs(), "products_db": url}
    async with AsyncClient(**pg_settings, cache_bytes=0) as client:
        sql = BASELINE_SQL  # what a user reading the whole table would write
        import psycopg

        with psycopg.connect(url) as plain:
            ours_t, theirs_t = [], []
            for _ in range(2):
                started = time.perf_counter()
                frame = await client.sources.measurements()
                ours_t.append(time.perf_counter() - started)
                with (
                    warnings.catch_warnings()
                ):  # pandas warns that psycopg is not SQLAlchemy: it is the baseline
                    warnings.simplefilter("ignore", UserWarning)
                    theirs_t.append(best_of(1, lambda: pd.read_sql_query(sql, plain)))
        results.append(
            Result(
                f"PostgreSQL sources.measurements() {len(frame):,} rows",
                min(ours_t),
                min(theirs_t),
                "pd.read_sql_query(sql, psycopg)",
                "reported",
                True,
            )
        )
        source_ids = (await client.sources.list(limit=200))["source_id"].tolist()
    lite_seconds, lite_calls = await _load(site.settings_kwargs(), source_ids)
    pg_seconds, pg_calls = await _load(pg_settings, source_ids)
    results.append(
        Result(
            f"{CLIENTS} concurrent clients, {pg_calls} calls (list, light curves, QA): calls/s",
            pg_calls / pg_seconds,
            lite_calls / lite_seconds,
            "the same load on SQLite (calls/s)",
            "reported (higher is better); no errors",
            True,
            unit="calls/s",
        )
    )
    return report("PostgreSQL (scaled site migrated)", results, "postgres.json")
