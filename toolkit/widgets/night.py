"""``NightPanel(client)``: the last night that has data, live. Grades per hour, MS stages, job outcomes and queue
states as bar charts; the newest images with thumbnails; the failed jobs with the first error of their logs.

It follows the pipeline as it writes: every ``poll`` seconds it asks the databases' change counters
(``client.data_version()``, one small query each) and reads the night again only when they moved; then each
part is redrawn only if what it shows changed. The charts are plain HTML, so nothing is fetched from the
internet and a redraw costs nothing on the kernel.
"""

from __future__ import annotations

import asyncio
import base64
import html
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

import ipywidgets as w
import pandas as pd

from ..client import AsyncClient
from ..errors import ToolkitError
from ..records import Night
from ..vocab import GRADES, MS_STAGES
from .panels import thumbnail
from .runner import AnyClient, Runner

NEWEST_IMAGES = 8
FAILED_JOBS = 10
_COLOURS = {"good": "#1a7f37", "warn": "#bf8700", "fail": "#cf222e", "not assessed": "#8c959f"}


@dataclass(frozen=True)
class NightData:
    """Everything the panel shows, read in one go."""

    night: Night
    images: pd.DataFrame  # the night's graded images (final grades), newest first
    ms_stages: dict[str, int]
    job_outcomes: dict[str, int]
    queue_states: dict[str, int] | None  # None: no ingest queue configured
    failed_jobs: list[tuple[str, str]]  # (run id, first error)
    thumbnails: dict[str, bytes | None]  # newest images' PNGs


def bars(counts: Mapping[str, int], colours: Mapping[str, str] | None = None) -> str:
    """Horizontal bars, one per key, scaled to the largest count."""
    if not counts:
        return '<div style="color:#57606a">none</div>'
    top = max(counts.values()) or 1
    rows = "".join(
        f'<div class="contimg-bar" data-key="{html.escape(k)}" style="display:flex;align-items:center;gap:6px">'
        f'<span style="width:7em;text-align:right">{html.escape(k)}</span>'
        f'<span style="display:inline-block;height:12px;width:{max(2, round(160 * n / top))}px;'
        f'background:{(colours or {}).get(k, "#0969da")};border-radius:2px"></span><span>{n:,}</span></div>'
        for k, n in counts.items()
    )
    return f'<div style="font-size:12px">{rows}</div>'


def grades_per_hour(images: pd.DataFrame) -> str:
    """A column per UTC hour of the night, stacked by final grade (good at the bottom)."""
    if not len(images):
        return '<div style="color:#57606a">no images this night</div>'
    hours = images["created_at"].dt.hour
    table = pd.crosstab(hours, images["final_grade"]).reindex(range(24), fill_value=0)
    top = int(table.sum(axis=1).max()) or 1
    columns = []
    for hour, row in table.iterrows():
        stack = "".join(
            f'<div title="{int(row[g])} {g}" style="height:{round(80 * row[g] / top)}px;'
            f'background:{_COLOURS[g]}"></div>'
            for g in reversed(GRADES)
            if row.get(g)
        )
        columns.append(
            f'<div style="display:flex;flex-direction:column;align-items:center;width:16px">'
            f'<div style="height:80px;width:12px;display:flex;flex-direction:column;justify-content:flex-end">'
            f'{stack}</div><span style="font-size:9px;color:#57606a">{hour:02d}</span></div>'
        )
    legend = " ".join(f'<span style="color:{_COLOURS[g]}">■ {g}</span>' for g in GRADES if g in table.columns)
    return f'<div style="display:flex;gap:1px">{"".join(columns)}</div><div style="font-size:11px">{legend}</div>'


def newest_images(images: pd.DataFrame, thumbnails: Mapping[str, bytes | None]) -> str:
    cards = []
    for row in images.head(NEWEST_IMAGES).itertuples():
        png = thumbnails.get(str(row.path))
        picture = (
            f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}" width="96" height="96">'
            if png
            else '<div style="width:96px;height:96px;border:1px dashed #8c959f;display:flex;align-items:center;'
            'justify-content:center;color:#57606a;font-size:10px">no file</div>'
        )
        grade = str(row.final_grade)
        cards.append(
            f'<div class="contimg-night-image" data-path="{html.escape(str(row.path))}" '
            f'title="{html.escape(str(row.path))}" style="width:104px;font-size:10px">{picture}'
            f'<div style="overflow:hidden;text-overflow:ellipsis;white-space:nowrap">'
            f"{html.escape(PurePosixPath(str(row.path)).name)}</div>"
            f'<div style="color:{_COLOURS.get(grade, "#57606a")};font-weight:600">{html.escape(grade)} · '
            f"{row.created_at:%H:%M}</div></div>"
        )
    return f'<div style="display:flex;flex-wrap:wrap;gap:6px">{"".join(cards)}</div>' if cards else "none"


def _first_line(error: str, width: int = 160) -> str:
    """The error's last line (a traceback ends with what went wrong), its start and its end kept when it is
    longer than ``width``; the whole error on hover."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else error
    return line if len(line) <= width else f"{line[: width // 3]} … {line[-(width - width // 3 - 3) :]}"


def failed_jobs(jobs: list[tuple[str, str]]) -> str:
    if not jobs:
        return '<div style="color:#57606a">no failed jobs this night</div>'
    items = "".join(
        f'<li class="contimg-night-failed" data-run-id="{html.escape(r)}" title="{html.escape(e)}">'
        f'<b>{html.escape(r)}</b>: <code style="font-size:11px">{html.escape(_first_line(e))}</code></li>'
        for r, e in jobs
    )
    return f'<ul style="margin:0;padding-left:1.2em;font-size:12px">{items}</ul>'


async def read_night(api: AsyncClient) -> NightData:
    night = await api.last_night()
    bounds = night.bounds
    images, ms, jobs = await asyncio.gather(
        api.qa.images(**bounds), api.qa.ms_list(**bounds), api.jobs.list(**bounds)
    )
    queue: dict[str, int] | None = None
    if api.settings.queue_db is not None:
        try:
            queue = dict((await api.queue.stats()).by_state)
        except ToolkitError:
            queue = None
    failed = jobs[jobs["status"].eq("failed").fillna(False)].head(FAILED_JOBS)

    async def first_error(run_id: str) -> tuple[str, str]:
        try:
            error = (await api.logs.summary(run_id)).first_error
        except ToolkitError as exc:
            error = f"(log not readable: {exc})"
        return run_id, error or "(no error line in the log)"

    errors = await asyncio.gather(*(first_error(str(r)) for r in failed["run_id"].dropna()))
    newest = images.head(NEWEST_IMAGES)["path"].astype(str).tolist()
    pngs = await asyncio.gather(*(asyncio.to_thread(thumbnail, api.settings, p) for p in newest))
    stages = ms["stage"].fillna("pending").value_counts().to_dict() if len(ms) else {}
    ordered = {s: int(stages[s]) for s in (*MS_STAGES, "pending") if s in stages}
    outcomes = jobs["status"].fillna("unknown").value_counts().to_dict() if len(jobs) else {}
    return NightData(
        night=night,
        images=images,
        ms_stages=ordered,
        job_outcomes={str(k): int(v) for k, v in outcomes.items()},
        queue_states=queue,
        failed_jobs=list(errors),
        thumbnails=dict(zip(newest, pngs, strict=True)),
    )


class NightPanel(w.VBox):  # type: ignore[misc]
    """The last night with data, following the pipeline; ``poll`` seconds between version checks (0: off)."""

    def __init__(self, client: AnyClient, *, poll: float = 10) -> None:
        self.runner = Runner(client)
        self.title = w.HTML("<b>loading the last night…</b>")
        self.status = w.HTML()
        self.parts = {
            name: w.HTML()
            for name in ("grades", "ms_stages", "job_outcomes", "queue_states", "newest", "failed")
        }
        for name, part in self.parts.items():
            part.add_class(f"contimg-night-{name.replace('_', '-')}")
        self.poll = w.BoundedFloatText(
            value=poll, min=0, max=3600, description="poll s", layout=w.Layout(width="160px")
        )
        self.poll.observe(lambda _c: self._schedule(), names="value")
        self.version: tuple[int, ...] | None = None
        self.reads = 0  # how many times the night was read (a poll with no change reads nothing)
        self.redraws: dict[str, int] = dict.fromkeys(self.parts, 0)
        self._timer: asyncio.Task[None] | None = None
        self._checking: asyncio.Task[None] | None = None

        def box(label: str, part: w.HTML) -> w.VBox:
            return w.VBox([w.HTML(f"<b>{label}</b>"), part], layout=w.Layout(margin="0 16px 8px 0"))

        super().__init__(
            [
                w.HBox([self.title, self.poll, self.status], layout=w.Layout(align_items="center")),
                w.HBox(
                    [
                        box("final grades per hour (UTC)", self.parts["grades"]),
                        box("MS stages", self.parts["ms_stages"]),
                        box("job outcomes", self.parts["job_outcomes"]),
                        box("ingest queue", self.parts["queue_states"]),
                    ],
                    layout=w.Layout(flex_flow="row wrap"),
                ),
                box("newest images", self.parts["newest"]),
                box("failed jobs, first log error", self.parts["failed"]),
            ]
        )
        self.add_class("contimg-night")
        self.check()
        self._schedule()

    def check(self) -> None:
        """Read the night if the databases changed since the last read (always, the first time). A check
        still running (a slow read) is not started again."""
        if self._checking is not None and not self._checking.done():
            return

        async def work(api: AsyncClient) -> tuple[tuple[int, ...], NightData | None]:
            version = await api.data_version()
            if version == self.version:
                return version, None
            return version, await read_night(api)

        def done(result: tuple[tuple[int, ...], NightData | None]) -> None:
            version, data = result
            self.status.value = (
                f'<span style="color:#57606a">checked {pd.Timestamp.now(tz="UTC"):%H:%M:%S} UTC</span>'
            )
            if data is not None:
                self.version = version
                self.reads += 1
                self.render(data)

        def failed(message: str) -> None:
            self.status.value = f'<span style="color:#cf222e">{html.escape(message)}</span>'

        self._checking = self.runner.start(work, done, failed)

    def render(self, data: NightData) -> None:
        self.data = data
        self.title.value = f"<b>{html.escape(data.night.title())}</b> · {len(data.images):,} images"
        queue = bars(data.queue_states) if data.queue_states is not None else "no ingest queue configured"
        self._set("grades", grades_per_hour(data.images))
        self._set("ms_stages", bars(data.ms_stages))
        self._set("job_outcomes", bars(data.job_outcomes, {"completed": "#1a7f37", "failed": "#cf222e"}))
        self._set("queue_states", queue)
        self._set("newest", newest_images(data.images, data.thumbnails))
        self._set("failed", failed_jobs(data.failed_jobs))

    def _set(self, name: str, value: str) -> None:
        """Redraw a part only when what it shows changed (the browser keeps the rest as it is)."""
        part = self.parts[name]
        if part.value != value:
            part.value = value
            self.redraws[name] += 1

    def _schedule(self) -> None:
        self.runner.cancel(self._timer)
        self._timer = None
        seconds = float(self.poll.value)
        if seconds > 0 and not self.runner.closed:
            self._timer = self.runner.every(seconds, self.check)

    async def settled(self) -> None:
        """Wait for the reads in flight (not the poll timer)."""
        await self.runner.settled(ignoring=self._timer)

    def close(self) -> None:
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.close()
        super().close()
