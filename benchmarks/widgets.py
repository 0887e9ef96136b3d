"""Widget paging benchmark (issue: widgets): any page of any tab through ``area.page``, on the scaled demo site."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from toolkit import AsyncClient, Page
from toolkit.demo import DemoSite
from toolkit.widgets.browser import SPECS
from toolkit.widgets.grid import display_cells
from toolkit.widgets.scatter import density, finite_or_none, inside, nearest, padded_view

from .harness import Result, report

PAGE = 50


async def _timed(area: Any, **request: Any) -> tuple[float, Page]:
    """Best of three ``area.page(**request)`` calls."""
    best, result = float("inf"), None
    for _ in range(3):
        started = time.perf_counter()
        result = await area.page(**request)
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return best, result


async def run(site: DemoSite) -> bool:
    results: list[Result] = []
    async with AsyncClient(**site.settings_kwargs(), cache_bytes=0) as client:
        for name, spec in SPECS.items():
            area: Any = getattr(client, spec.area)
            for sort_label, sort in spec.sorts.items():
                order = {"sort": sort, "descending": spec.descending, "size": PAGE}
                times: dict[str, float] = {}
                times["count"], counted = await _timed(area, count=True, **order)
                deep_page = max(1, (min(counted.count or 0, 10_000) - PAGE - 1) // PAGE)
                times["first"], _ = await _timed(area, count=False, **order)
                times["jump"], jumped = await _timed(area, number=deep_page, count=False, **order)
                times["deep"], _ = await _timed(area, after=jumped.next, count=False, **order)
                times["last"], last = await _timed(area, last=True, count=False, **order)
                # What the grid adds: every cell of the page as text (the browser lays it out)
                started = time.perf_counter()
                display_cells(last.rows, [str(c) for c in last.rows.columns])
                times["last"] += time.perf_counter() - started
                worst = max(times, key=lambda k: times[k])
                results.append(
                    Result(
                        f"{name} by {sort_label}: slowest page",
                        times[worst] * 1000,
                        times["first"] * 1000,
                        f"first page (slowest: {worst}; deep = page {deep_page + 1:,}; also count, jump, "
                        "last with its cells shaped for the grid)",
                        "<= 100 ms",
                        times[worst] <= 0.100,
                        unit="ms",
                    )
                )
    results.append(_eta_v_at_scale())
    return report(
        "Widget paging (client.<area>.page, 50 rows a page) and the eta-V plane", results, "widgets.json"
    )


def _eta_v_at_scale(n: int = 100_000) -> Result:
    """The eta-V panel's Python side at 100,000 sources: the density drawn instead of the points, then a click
    and a lasso resolved against every source (what the browser waits for), against drawing them one by one."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(0, 0.4, n), rng.normal(-1.2, 0.3, n)
    view = padded_view(x, y)
    started = time.perf_counter()
    shaded = density(x, y, view)
    nearest(x, y, [float(x[7]), float(y[7])], view)
    inside(x, y, [[0.5, -1.0], [1.5, -1.0], [1.5, 0.0], [0.5, 0.0]])
    ours = time.perf_counter() - started
    started = time.perf_counter()
    points = json.dumps({"x": finite_or_none(x), "y": finite_or_none(y)})  # what one-by-one would ship
    every_point = time.perf_counter() - started
    sent = len(json.dumps(shaded))
    return Result(
        f"eta-V at {n:,} sources: density + click + lasso",
        ours * 1000,
        every_point * 1000,
        f"serialising every point for the browser ({len(points) / 1e6:.1f} MB; the density is {sent / 1e3:.0f} kB)",
        "<= 100 ms",
        ours <= 0.100,
        unit="ms",
    )
