"""Widget paging benchmark (issue: widgets): any page of any tab through ``area.page``, on the scaled demo site."""

from __future__ import annotations

import time
from typing import Any

from toolkit import AsyncClient, Page
from toolkit.demo import DemoSite
from toolkit.widgets.browser import SPECS
from toolkit.widgets.grid import display_cells

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
    return report("Widget paging (client.<area>.page, 50 rows a page)", results, "widgets.json")
