"""``Dashboard(client)``: the pipeline's counts, the last night's grades and the newest images, refreshed on a
timer."""

from __future__ import annotations

import asyncio
import html
from typing import Any

import ipywidgets as w
import pandas as pd

from ..client import AsyncClient
from ..errors import RecordNotFoundError
from ..records import Night
from .panels import fields_html
from .runner import AnyClient, Runner
from .table import html_table

RECENT_IMAGES = 10


class Dashboard(w.VBox):  # type: ignore[misc]
    """Stats, the final grades of the last night with data (``client.last_night()``), the newest images.
    ``refresh`` seconds: 0 = off."""

    def __init__(self, client: AnyClient, *, refresh: float = 0) -> None:
        self.runner = Runner(client)
        self.counts = w.HTML()
        self.grades = w.HTML()
        self.grades.add_class("contimg-grades")
        self.recent = w.HTML()
        self.status = w.HTML('<span style="color:#57606a">loading…</span>')
        self.interval = w.BoundedFloatText(value=refresh, min=0, max=3600, description="refresh s")
        self.refresh_button = w.Button(description="refresh now")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.interval.observe(lambda _c: self._schedule(), names="value")
        self._timer: asyncio.Task[None] | None = None
        self.refreshes = 0
        super().__init__(
            [
                w.HBox([self.refresh_button, self.interval, self.status]),
                w.HBox([self.counts, self.grades]),
                w.HTML("<b>newest images</b>"),
                self.recent,
            ]
        )
        self.add_class("contimg-dashboard")
        self.refresh()
        self._schedule()

    def refresh(self) -> None:
        async def work(api: AsyncClient) -> tuple[Any, Night | None, pd.DataFrame]:
            try:
                night: Night | None = await api.last_night()
            except RecordNotFoundError:  # an empty site: no night yet
                night = None
            graded = await api.qa.images(**night.bounds) if night is not None else pd.DataFrame()
            return await api.stats(), night, graded

        def done(result: tuple[Any, Night | None, pd.DataFrame]) -> None:
            stats, night, graded = result
            values = {
                "MS": stats.ms_total,
                **{f"MS {k}": v for k, v in sorted(stats.ms_by_stage.items())},
                "images": stats.images_total,
                "sources": stats.unique_sources,
                "photometry rows": stats.photometry_rows,
                "jobs": stats.jobs_total,
                **{f"jobs {k}": v for k, v in sorted(stats.jobs_by_status.items())},
                "cal tables": stats.cal_tables_total,
            }
            self.counts.value = fields_html(values)
            by_grade = graded["final_grade"].value_counts().to_dict() if len(graded) else {}
            self.grade_counts = {str(k): int(v) for k, v in by_grade.items()}
            heading = f"night of {night.date:%Y-%m-%d}" if night is not None else "no night with data yet"
            self.grades.value = f"<b>images graded, {heading}</b>" + fields_html(
                self.grade_counts or {"none": 0}
            )
            recent = stats.recent_images.head(RECENT_IMAGES)
            self.recent.value = html_table(
                recent,
                [c for c in ("id", "path", "type", "created_at", "noise_jy", "qa_grade") if c in recent],
            )
            self.refreshes += 1
            self.status.value = (
                f'<span style="color:#57606a">updated {pd.Timestamp.now(tz="UTC"):%H:%M:%S} UTC</span>'
            )

        def failed(message: str) -> None:
            self.status.value = f'<span style="color:#cf222e">{html.escape(message)}</span>'

        self.runner.start(work, done, failed)

    def _schedule(self) -> None:
        self.runner.cancel(self._timer)
        self._timer = None
        seconds = float(self.interval.value)
        if seconds <= 0 or self.runner.closed:
            return

        self._timer = self.runner.every(seconds, self.refresh)

    async def settled(self) -> None:
        await self.runner.settled()

    def close(self) -> None:
        runner = getattr(self, "runner", None)  # __del__ of a dashboard whose __init__ raised
        if runner is not None:
            runner.close()
        super().close()
