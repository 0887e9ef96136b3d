"""Science benchmarks (issue: science): vectorised variability against a per-source Python loop, and memory."""

from __future__ import annotations

import gc
import itertools
import math
import time
import tracemalloc
from typing import Any

import numpy as np

from toolkit import AsyncClient, science
from toolkit.demo import DemoSite

from .harness import Result, abest_of, best_of, report

# The loop baseline is timed on every LOOP_EVERY-th source and scaled: all 10,000 take minutes, each the same work.
LOOP_EVERY = 10


def _python_loop(f: np.ndarray, s: np.ndarray) -> tuple[float, float, float, float]:
    """One source's metrics in plain Python: the loop a notebook writes from the definitions."""
    n = len(f)
    if n < 2:
        return 0.0, 0.0, 0.0, 0.0
    weighted = [(x, 1.0 / e**2) for x, e in zip(f, s, strict=True) if e > 0]
    nw = len(weighted)
    eta = 0.0
    if nw > 1:
        mw = sum(w for _, w in weighted) / nw
        mwf = sum(w * x for x, w in weighted) / nw
        mwf2 = sum(w * x * x for x, w in weighted) / nw
        eta = nw / (nw - 1) * (mwf2 - mwf**2 / mw)
    mean = sum(f) / n
    v = math.sqrt(sum((x - mean) ** 2 for x in f) / (n - 1)) / mean
    vs = m = 0.0
    for a, b in itertools.combinations(range(n), 2):
        if s[a] > 0 and s[b] > 0:
            vs = max(vs, abs(f[a] - f[b]) / math.sqrt(s[a] ** 2 + s[b] ** 2))
        total = f[a] + f[b]
        if total != 0:
            m = max(m, abs(2 * (f[a] - f[b]) / total))
    return eta, v, vs, m


def _numpy_loop(f: np.ndarray, s: np.ndarray) -> tuple[float, float, float, float]:
    """One source's metrics with numpy inside (all its pairs at once): the fastest per-source loop."""
    n = len(f)
    if n < 2:
        return 0.0, 0.0, 0.0, 0.0
    good = s > 0
    w, fw = 1.0 / s[good] ** 2, f[good]
    nw = len(fw)
    eta = nw / (nw - 1) * (np.mean(w * fw**2) - np.mean(w * fw) ** 2 / np.mean(w)) if nw > 1 else 0.0
    v = float(np.std(f, ddof=1) / np.mean(f))
    a, b = np.triu_indices(n, 1)
    d = np.abs(f[a] - f[b])
    with np.errstate(divide="ignore", invalid="ignore"):
        vs = np.nanmax(d / np.sqrt(s[a] ** 2 + s[b] ** 2))
        m = np.nanmax(2 * d / np.abs(f[a] + f[b]))
    return float(eta), v, float(vs), float(m)


def _timed_loop(groups: list[tuple[np.ndarray, np.ndarray]], one: Any) -> float:
    sample = groups[::LOOP_EVERY]
    started = time.perf_counter()
    for f, s in sample:
        one(f, s)
    return (time.perf_counter() - started) * len(groups) / len(sample)


async def run(site: DemoSite) -> bool:
    results: list[Result] = []
    async with AsyncClient(
        **site.settings_kwargs(), cache_bytes=0
    ) as client:  # measure queries, not the cache
        frame = await client.sources.measurements(columns=science.needed_columns("flux_jy"))
        frame = frame[frame["flux_jy"].notna()]
        ours = best_of(3, lambda: science.variability(frame))
        groups = [
            (g["flux_jy"].to_numpy(float), g["flux_err_jy"].fillna(0).to_numpy(float))
            for _, g in frame.sort_values(["source_id", "mjd"]).groupby("source_id", sort=True)
        ]
        label = f"variability of {len(groups):,} sources ({len(frame):,} rows)"
        timed = f"{len(groups[::LOOP_EVERY]):,} timed, x{LOOP_EVERY}"
        python_loop = _timed_loop(groups, _python_loop)
        numpy_loop = _timed_loop(groups, _numpy_loop)
        results.append(
            Result(
                label,
                ours,
                python_loop,
                f"per-source Python loop ({timed})",
                "<= 0.05x (20x faster)",
                ours / python_loop <= 1 / 20,
            )
        )
        results.append(
            Result(label, ours, numpy_loop, f"per-source loop, numpy inside ({timed})", "reported", True)
        )
        frame_bytes = float(frame.memory_usage(deep=True).sum())
        gc.collect()
        tracemalloc.start()
        science.variability(frame)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        results.append(
            Result(
                "variability peak memory (tracemalloc)",
                peak / 2**20,
                frame_bytes / 2**20,
                "the measurements frame (memory_usage deep)",
                "<= 3x",
                peak <= 3 * frame_bytes,
                unit="MiB",
            )
        )
        whole = await abest_of(1, lambda: client.sources.variability())
        results.append(
            Result(
                "sources.variability() whole call (read + compute)",
                whole,
                ours,
                "science.variability on the frame in memory",
                "reported",
                True,
            )
        )
    return report("Science (10k sources x 100 epochs)", results, "science.json")
