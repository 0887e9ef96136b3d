"""Shared pieces: the cached scaled demo site, timing, event-loop lag, and the report."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from toolkit.demo import DemoSite, build_demo_site

# What a user reading the whole photometry table would write (the bulk benchmarks' baseline query).
BASELINE_SQL = "SELECT * FROM photometry ORDER BY id"

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench-cache"
RESULTS = ROOT / "bench-results"
SITE_VERSION = "2"  # bump when the demo generator changes what it writes


@dataclass
class Result:
    """One comparison: ``ratio`` is ours / baseline (below 1 means we are faster) unless ``higher_is_better``."""

    name: str
    ours: float
    baseline: float
    baseline_name: str
    goal: str
    passed: bool
    unit: str = "s"
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else float("inf")


def cached_site(name: str, what: str, **options: Any) -> DemoSite:
    """A demo site built once into ``.bench-cache/<name>-v<SITE_VERSION>`` (``options`` go to
    ``build_demo_site``) and reused while the generator version is unchanged."""
    folder = CACHE / f"{name}-v{SITE_VERSION}"
    marker = folder / ".complete"
    if not marker.exists():
        print(f"building {what} in {folder} (once) ...", flush=True)
        started = time.perf_counter()
        build_demo_site(folder, **options)
        marker.write_text(json.dumps({"seconds": time.perf_counter() - started}))
        print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
    return DemoSite.existing(folder)


def scaled_site() -> DemoSite:
    """The benchmark-size demo site (10,000 images, 1,000,000 photometry rows)."""
    return cached_site("bench-site", "the scaled demo site", scale="bench")


def best_of(repeat: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


async def abest_of(repeat: int, fn: Callable[[], Awaitable[Any]]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - started)
    return min(times)


async def max_loop_lag(work: Callable[[], Awaitable[Any]], tick: float = 0.005) -> float:
    """Largest delay (s) beyond ``tick`` seen by a task sleeping ``tick`` in a loop while ``work`` runs."""
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(tick)
            lags.append(time.perf_counter() - started - tick)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(tick * 4)
    try:
        await work()
    finally:
        done.set()
        await task
    return max(lags) if lags else 0.0


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(title: str, results: list[Result], json_name: str) -> bool:
    print(f"\n{title}")
    print(f"{'benchmark':44s} {'ours':>10s} {'baseline':>10s} {'ratio':>8s}  goal")
    for r in results:
        mark = "ok  " if r.passed else "MISS"
        print(
            f"{r.name:44s} {r.ours:10.4f} {r.baseline:10.4f} {r.ratio:8.3f}  {mark} {r.goal} "
            f"(baseline: {r.baseline_name}{'; ' + r.note if r.note else ''})"
        )
    RESULTS.mkdir(exist_ok=True)
    payload = [{**asdict(r), "ratio": r.ratio} for r in results]
    (RESULTS / json_name).write_text(json.dumps(payload, indent=2))
    print(f"written: {RESULTS / json_name}")
    return all(r.passed for r in results)
