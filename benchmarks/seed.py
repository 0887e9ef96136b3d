"""The seed-era schema (issue 17): the first pipeline's 15-column photometry, where the demo's wider schema
hides per-call costs. ``measurements()`` against the ADBC read of the same columns (goal <= 1.2x), and one
light curve against ``pd.DataFrame(conn.execute(sql, (source_id,)).fetchall())`` on a reused sqlite3
connection (goal <= 1.5x), on a 1,000,000-row seed-era site."""

from __future__ import annotations

import sqlite3
import time

import adbc_driver_sqlite.dbapi as adbc
import pandas as pd

from toolkit import AsyncClient
from toolkit.db.sqlite import read_only_uri
from toolkit.demo import DemoSite
from toolkit.demo.site import size_for_rows
from toolkit.schema import OLDER

from .core import LIGHTCURVE_SQL
from .harness import Result, abest_of, best_of, cached_site, report

SEED_COLUMNS = list(OLDER["photometry"])


def seed_site() -> DemoSite:
    return cached_site(
        "seed-site", "the 1,000,000-row seed-era site", scale=size_for_rows(1_000_000), schema="seed"
    )


async def run(site: DemoSite) -> bool:
    uri = read_only_uri(site.products_db)
    results: list[Result] = []
    sql = f"SELECT {', '.join(SEED_COLUMNS)} FROM photometry ORDER BY id"
    async with AsyncClient(products_db=site.products_db, cache_bytes=0) as client:
        adbc_conn = adbc.connect(uri)
        ours_t, adbc_t = [], []
        for _ in range(3):  # interleaved, so drift hits both
            ours_t.append(await abest_of(1, lambda: client.sources.measurements(columns=SEED_COLUMNS)))
            adbc_t.append(best_of(1, lambda: pd.read_sql_query(sql, adbc_conn)))
        adbc_conn.close()
        rows = len(await client.sources.measurements(columns=["id"]))
        results.append(
            Result(
                f"seed schema: measurements() {rows:,} rows",
                min(ours_t),
                min(adbc_t),
                "pd.read_sql_query(same 15 columns, adbc)",
                "<= 1.2x",
                min(ours_t) / min(adbc_t) <= 1.2,
            )
        )
        conn = sqlite3.connect(uri, uri=True)
        ids = (await client.sources.list(limit=200))["source_id"].tolist()
        for source_id in ids[:5]:  # warm both paths
            await client.sources.lightcurve(source_id)
            pd.DataFrame(conn.execute(LIGHTCURVE_SQL, (source_id,)).fetchall())
        ours_lc, plain_lc = [], []
        for source_id in ids:
            started = time.perf_counter()
            await client.sources.lightcurve(source_id)
            ours_lc.append(time.perf_counter() - started)
            started = time.perf_counter()
            pd.DataFrame(conn.execute(LIGHTCURVE_SQL, (source_id,)).fetchall())
            plain_lc.append(time.perf_counter() - started)
        conn.close()
    ours_median, plain_median = sorted(ours_lc)[len(ours_lc) // 2], sorted(plain_lc)[len(plain_lc) // 2]
    results.append(
        Result(
            "seed schema: lightcurve() per call (median of 200)",
            ours_median * 1000,
            plain_median * 1000,
            "pd.DataFrame(conn.execute(sql, (id,)).fetchall()), reused sqlite3",
            "<= 1.5x",
            ours_median / plain_median <= 1.5,
            unit="ms",
        )
    )
    return report("Seed-era schema (1M photometry rows, 15 columns)", results, "seed.json")
