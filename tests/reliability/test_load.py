"""Load while the pipeline writes: 2,000 concurrent mixed calls on one AsyncClient, and the blocking client
from 32 threads. No call fails (no "database is locked"), and no count goes backwards: a call that began
after another ended never sees fewer rows."""

from __future__ import annotations

import asyncio
import bisect
import random
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from toolkit import AsyncClient, Client
from toolkit.demo import DemoSite

from ..threads import live_threads, until_no_new_threads
from .pipeline import SOURCE

# The pipeline at work: a commit every few milliseconds, a checkpoint of every kind now and then, until told
# to stop (stdin closes) or a minute has passed.
BUSY_WRITER = textwrap.dedent(
    """
    import sqlite3, sys, threading, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    modes = ["PASSIVE", "FULL", "RESTART", "TRUNCATE"]
    step, started = 0, time.monotonic()
    print("ready", flush=True)
    while not stop.is_set() and time.monotonic() - started < 60:
        step += 1
        conn.execute("INSERT INTO images (path, type, created_at) VALUES (?, 'image', 4102444800)", (f"/busy/{step}",))
        if step % 25 == 0:
            conn.execute(f"PRAGMA wal_checkpoint({modes[step // 25 % 4]})")
        time.sleep(0.003)
    print(step, flush=True)
    """
)


@pytest.fixture
def busy_writer(writable_site: DemoSite) -> Iterator[subprocess.Popen[str]]:
    writer = subprocess.Popen(
        [sys.executable, "-c", BUSY_WRITER, str(writable_site.products_db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    yield writer
    if writer.poll() is None:
        writer.communicate(timeout=30)


@dataclass(frozen=True)
class Seen:
    started: float
    ended: float
    count: int


def never_backwards(seen: list[Seen]) -> None:
    """For every call, no call that ended before it started saw more rows than it did."""
    by_end = sorted(seen, key=lambda s: s.ended)
    ends = [s.ended for s in by_end]
    best_so_far = []
    best = -1
    for s in by_end:
        best = max(best, s.count)
        best_so_far.append(best)
    for s in seen:
        k = bisect.bisect_left(ends, s.started)
        if k:
            assert s.count >= best_so_far[k - 1], "a count went backwards"


def _mixed(client: AsyncClient, rng: random.Random) -> Callable[[], Awaitable[Any]]:
    kinds = [
        lambda: client.sql("SELECT COUNT(*) AS n FROM images"),
        lambda: client.images.list(limit=50),
        lambda: client.images.list(type="image", limit=200),
        lambda: client.sources.lightcurve(SOURCE),
        lambda: client.stats(),
        lambda: client.ms.list(limit=20),
        lambda: client.jobs.list(limit=20),
        lambda: client.qa.images(),
    ]
    return kinds[rng.randrange(len(kinds))]


async def test_two_thousand_concurrent_calls_while_the_pipeline_writes(
    writable_site: DemoSite, busy_writer: subprocess.Popen[str]
) -> None:
    rng = random.Random(7)
    seen: list[Seen] = []
    before = live_threads()
    async with AsyncClient(**writable_site.settings_kwargs()) as client:

        async def counted() -> None:
            started = time.monotonic()
            frame = await client.sql("SELECT COUNT(*) AS n FROM images")
            seen.append(Seen(started, time.monotonic(), int(frame["n"].iloc[0])))

        calls = [counted() if k % 4 == 0 else _mixed(client, rng)() for k in range(2000)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert failures == [], failures[:3]
    assert len(seen) == 500
    never_backwards(seen)
    assert max(s.count for s in seen) > min(s.count for s in seen)  # the writer was really writing
    assert busy_writer.poll() is None  # and never died of a lock
    await until_no_new_threads(before)


def test_the_blocking_client_from_32_threads_while_the_pipeline_writes(
    writable_site: DemoSite, busy_writer: subprocess.Popen[str]
) -> None:
    seen: list[Seen] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    with Client(**writable_site.settings_kwargs()) as client:

        def worker(k: int) -> None:
            rng = random.Random(k)
            try:
                for _ in range(15):
                    started = time.monotonic()
                    if rng.random() < 0.5:
                        count = int(client.sql("SELECT COUNT(*) AS n FROM images")["n"].iloc[0])
                        with lock:
                            seen.append(Seen(started, time.monotonic(), count))
                    else:
                        client.images.list(limit=100)
            except BaseException as exc:
                with lock:
                    failures.append(exc)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert failures == [], failures[:3]
    assert len(seen) > 100
    never_backwards(seen)
    assert busy_writer.poll() is None


def test_never_backwards_catches_a_stale_answer() -> None:
    with pytest.raises(AssertionError, match="backwards"):
        never_backwards([Seen(0, 1, 10), Seen(2, 3, 9)])
    never_backwards([Seen(0, 3, 10), Seen(1, 2, 9)])  # overlapping calls may see either
