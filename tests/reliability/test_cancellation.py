"""Cancellation at random points of every kind of call, each followed by a normal call that must succeed; no
thread outlives the client, whatever was cancelled where."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from toolkit import AsyncClient
from toolkit.demo import DemoSite

from ..threads import live_threads, until_no_new_threads


async def _first_line(client: AsyncClient, run_id: str) -> str:
    async for line in client.logs.follow(run_id, from_end=False, poll_interval=0.01):
        return line
    raise AssertionError("follow ended")


def _calls(site: DemoSite) -> dict[str, Callable[[AsyncClient], Awaitable[Any]]]:
    run_id = sorted(site.log_dir.glob("*.log"))[0].stem
    source = site.variable_sources[0]
    return {
        "listing": lambda c: c.images.list(),
        "page": lambda c: c.images.list(limit=50),
        "bulk frame": lambda c: c.sources.measurements(),
        "light curve": lambda c: c.sources.lightcurve(source),
        "variability": lambda c: c.sources.variability(),
        "grep": lambda c: c.logs.grep(run_id, "INFO|ERROR", context=2),
        "follow": lambda c: _first_line(c, run_id),
        "qa report": lambda c: c.qa.report(),
        "qa images": lambda c: c.qa.images(),
        "sql": lambda c: c.sql("SELECT COUNT(*) AS n FROM photometry"),
        "stats": lambda c: c.stats(),
    }


async def test_cancelling_any_call_anywhere_leaves_the_client_working(site: DemoSite) -> None:
    calls = _calls(site)
    rng = random.Random(20261203)
    before = live_threads()
    cancelled = 0
    async with AsyncClient(**site.settings_kwargs(), cache_bytes=0) as client:
        for name, call in calls.items():
            started = time.perf_counter()
            expected = await call(client)
            took = time.perf_counter() - started  # the cancel points are drawn from within this
            for _ in range(6):
                task = asyncio.create_task(call(client))
                await asyncio.sleep(rng.uniform(0, took))
                if task.cancel():
                    cancelled += 1
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                again = await call(client)  # a normal call right after must succeed, with the same answer
                assert type(again) is type(expected), name
                if hasattr(again, "__len__"):
                    assert len(again) == len(expected), name
    assert cancelled >= len(calls) * 2  # a third of the draws (measured: about half) landed inside the call
    await until_no_new_threads(before)
