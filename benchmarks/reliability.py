"""Load while the pipeline writes (issue: reliability): the same mixed calls run one after another, and all
at once on one AsyncClient, with and without a concurrent writer process, on a private copy of the 1M-row site.

On two cores, 600 calls at once cannot beat them one by one (the work is CPU, and the pool holds 4
connections); the goal is that a burst of load and a writing pipeline cost little: at once within 1.5x of one
by one, and the writer within 2x of no writer.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from toolkit import AsyncClient
from toolkit.demo import DemoSite

from .harness import Result, report

CALLS = 600
WRITER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
print("ready", flush=True)
step = 0
while not sys.stdin.closed:
    step += 1
    conn.execute("INSERT INTO images (path, type, created_at) VALUES (?, 'image', 4102444800)", (f"/bench/{step}",))
    if step % 25 == 0:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    time.sleep(0.003)
    if step > 100000:
        break
"""


def _plan(client: AsyncClient, sources: list[str]) -> list[Callable[[], Awaitable[Any]]]:
    rng = random.Random(11)
    kinds: list[Callable[[], Awaitable[Any]]] = [
        lambda: client.sql("SELECT COUNT(*) AS n FROM images"),
        lambda: client.images.list(limit=50),
        lambda: client.sources.lightcurve(rng.choice(sources)),
        lambda: client.ms.list(limit=20),
        lambda: client.jobs.list(limit=20),
        lambda: client.images.get(rng.randrange(1, 9000)),
    ]
    return [kinds[rng.randrange(len(kinds))] for _ in range(CALLS)]


async def _sequential(plan: list[Callable[[], Awaitable[Any]]]) -> float:
    started = time.perf_counter()
    for call in plan:
        await call()
    return time.perf_counter() - started


async def _concurrent(plan: list[Callable[[], Awaitable[Any]]]) -> float:
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(call() for call in plan), return_exceptions=True)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    if failures:
        raise RuntimeError(f"{len(failures)} calls failed under load, e.g. {failures[0]!r}")
    return time.perf_counter() - started


async def run(site: DemoSite) -> bool:
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="contimg-bench-load-") as folder:
        db = Path(folder) / "products.sqlite3"
        shutil.copy(site.products_db, db)
        kwargs = {**site.settings_kwargs(), "products_db": db, "cache_bytes": 0}
        async with AsyncClient(**kwargs) as client:
            sources = (await client.sources.list(limit=200))["source_id"].tolist()
            plan = _plan(client, sources)
            await _concurrent(plan[:50])  # warm connections, readers and page caches
            times: dict[str, float] = {}
            for writing in (False, True):
                writer = None
                if writing:
                    writer = await asyncio.create_subprocess_exec(
                        sys.executable, "-c", WRITER, str(db), stdin=subprocess.PIPE, stdout=subprocess.PIPE
                    )
                    assert writer.stdout is not None
                    await writer.stdout.readline()
                try:
                    # Interleaved, best of two, so that drift hits both ways alike.
                    seq, conc = [], []
                    for _ in range(2):
                        seq.append(await _sequential(plan))
                        conc.append(await _concurrent(plan))
                    times[f"seq{writing}"], times[f"conc{writing}"] = min(seq), min(conc)
                finally:
                    if writer is not None:
                        writer.kill()
                        await writer.wait()
            for writing in (False, True):
                label = "with a writer" if writing else "no writer"
                seq, conc = times[f"seq{writing}"], times[f"conc{writing}"]
                results.append(
                    Result(
                        f"{CALLS} mixed calls at once, {label}",
                        conc,
                        seq,
                        "the same calls one after another",
                        "<= 1.5x",
                        conc <= 1.5 * seq,
                        note=f"{CALLS / conc:,.0f} calls/s at once, {CALLS / seq:,.0f} one by one",
                    )
                )
            results.append(
                Result(
                    f"{CALLS} mixed calls at once: writer's cost",
                    times["concTrue"],
                    times["concFalse"],
                    "the same load with no writer",
                    "<= 2.0x",
                    times["concTrue"] <= 2 * times["concFalse"],
                )
            )
    return report("Reliability: load while the pipeline writes", results, "reliability.json")
