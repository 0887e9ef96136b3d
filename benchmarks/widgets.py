"""Widget paging benchmark (issue: widgets): any page of any tab, server-side, on the scaled demo site."""

from __future__ import annotations

import time
from typing import Any

from toolkit import AsyncClient
from toolkit.demo import DemoSite
from toolkit.widgets.browser import SPECS
from toolkit.widgets.paging import Cursor

from .harness import Result, report

PAGE = 50


async def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(3):
        started = time.perf_counter()
        result = await fn(*args)
        best = min(best, time.perf_counter() - started)
    return best, result


async def run(site: DemoSite) -> bool:
    results: list[Result] = []
    async with AsyncClient(**site.settings_kwargs(), cache_bytes=0) as client:
        for name, spec in SPECS.items():
            db = await spec.backend(client)
            for sort_label, sort in spec.sorts.items():
                q = spec.build(db, {}).sorted_by(sort, sort != "p.source_id")
                count_sql, count_params = q.count()
                count = (await db.fetch_rows(count_sql, count_params))[0][0]
                deep = max(0, min(count, 10_000) - PAGE - 1)
                times: dict[str, float] = {}
                times["count"], _ = await _timed(db.fetch_rows, count_sql, count_params)
                times["first"], _ = await _timed(db.fetch_frame, *q.page(PAGE), spec.kinds, spec.post)
                times["jump"], found = await _timed(db.fetch_rows, *q.cursor_at(deep))
                cursor = Cursor(found[0][0], found[0][1]) if found else None
                times["deep"], _ = await _timed(
                    db.fetch_frame, *q.page(PAGE, after=cursor), spec.kinds, spec.post
                )
                times["last"], _ = await _timed(db.fetch_frame, *q.last_page(PAGE), spec.kinds, spec.post)
                worst = max(times, key=lambda k: times[k])
                results.append(
                    Result(
                        f"{name} by {sort_label}: slowest page",
                        times[worst] * 1000,
                        times["first"] * 1000,
                        f"first page (slowest: {worst}; deep = row {deep:,}; also count, jump, last)",
                        "<= 100 ms",
                        times[worst] <= 0.100,
                        unit="ms",
                    )
                )
    return report("Widget paging (server side, 50 rows a page)", results, "widgets.json")
