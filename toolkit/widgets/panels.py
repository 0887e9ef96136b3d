"""Detail panels: one object each (image, MS, source, job with its live log, cal table).

Each panel is usable on its own (``ImagePanel(client, 1234)``) and inside the Browser. It shows a loading
state, then the object or an error message in the panel; ``close()`` cancels whatever it still runs.
"""

from __future__ import annotations

import asyncio
import functools
import html
import io
import os
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd

from .. import fits
from ..client import AsyncClient
from ..errors import ToolkitError
from ..records import Record
from ..settings import Settings
from .notes_box import NotesBox, Target
from .runner import AnyClient, Runner
from .scatter import Scatter, finite_or_none, nearest, padded_view

Opener = Callable[[str, Any], None]  # ("ms" | "job" | "log" | "image" | ..., identifier)
LOG_BUFFER_LINES = 5_000
LEVELS = ("all", "DEBUG", "INFO", "WARNING", "ERROR")


def fields_html(values: Mapping[str, Any], skip: tuple[str, ...] = ()) -> str:
    def show(value: Any) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return '<span style="color:#8c959f">—</span>'
        if isinstance(value, float):
            return f"{value:.6g}"
        if isinstance(value, list | tuple):
            return "<br>".join(html.escape(str(v)) for v in value[:20]) + (
                f"<br>… {len(value) - 20} more" if len(value) > 20 else ""
            )
        return html.escape(str(value)[:500])

    rows = "".join(
        f'<tr><th style="text-align:left;padding-right:1em">{html.escape(k)}</th><td data-field="{html.escape(k)}">{show(v)}</td></tr>'
        for k, v in values.items()
        if k not in skip
    )
    return f'<table class="contimg-fields" style="font-size:12px">{rows}</table>'


class Panel(w.VBox):  # type: ignore[misc]
    """Shared behaviour: a title, a status line (loading / error), a body, close()."""

    kind = "object"

    def __init__(self, client: AnyClient, ident: Any, opener: Opener | None = None) -> None:
        self.runner = Runner(client)
        self.ident = ident
        self.opener = opener
        self.record: Record | None = None  # the object shown, once loaded
        self.on_close: Callable[[], None] | None = None  # the Browser folds its detail away
        self.title = w.HTML(f"<b>{html.escape(self.kind)} {html.escape(str(ident))}</b>")
        self.status = w.HTML('<span style="color:#57606a">loading…</span>')
        self.status.add_class("contimg-status")
        self.body = w.VBox()
        self.close_button = w.Button(description="close", layout=w.Layout(width="70px"))
        self.close_button.on_click(lambda _b: self.close())
        self.children_below = w.VBox()  # panels opened from this one when it stands alone
        super().__init__(
            [w.HBox([self.title, self.close_button]), self.status, self.body, self.children_below]
        )
        self.add_class("contimg-panel")
        self.add_class(f"contimg-{self.kind.replace(' ', '-')}-panel")
        self.load()

    def load(self) -> None:
        raise NotImplementedError

    def show_error(self, message: str) -> None:
        self.status.value = f'<span style="color:#cf222e">{html.escape(message)}</span>'

    def loaded(self, record: Record | None = None) -> None:
        self.status.value = ""
        self.record = record

    def show(self, kind: str, ident: Any) -> None:
        """Follow a link: the Browser shows it in the detail area; a standalone panel opens it below."""
        if self.opener is not None:
            self.opener(kind, ident)
            return
        panel = make_panel(self.runner.client, kind, ident)
        self.children_below.children = (*self.children_below.children, panel)

    def notes_box(self, target: Target, on_write: Callable[[], None] | None = None) -> NotesBox:
        """The object's notes, shown and added to in place (``self.notes``)."""
        labels = self.runner.api.settings.note_labels
        self.notes = NotesBox(self.runner, target, labels=labels, on_write=on_write)
        return self.notes

    def link(self, label: str, kind: str, ident: Any) -> w.Button:
        button = w.Button(description=label, disabled=ident is None, layout=w.Layout(width="auto"))
        button.add_class(f"contimg-link-{kind}")
        button.on_click(lambda _b: self.show(kind, ident))
        return button

    async def settled(self) -> None:
        await self.runner.settled()
        for child in self.children_below.children:
            if isinstance(child, Panel):
                await child.settled()

    def close(self) -> None:
        if getattr(self, "runner", None) is None:  # __del__ of a panel whose __init__ raised
            super().close()
            return
        self.runner.close()
        for child in self.children_below.children:
            if isinstance(child, Panel):
                child.close()
        if self.on_close is not None:
            self.on_close()
        super().close()


# ----------------------------------------------------------------------------------- thumbnails
@functools.lru_cache(maxsize=256)
def _thumbnail_png(path: str, mtime_ns: int) -> bytes | None:
    """A FITS image's PNG thumbnail (cached on path and modification time); None when it cannot be read."""
    try:
        from astropy.io import fits as astropy_fits
        from astropy.visualization import ZScaleInterval

        with astropy_fits.open(path, memmap=True) as hdul:
            data, _ = fits.sky_plane(hdul)
            step = max(1, max(data.shape) // 512)
            data = np.array(data[::step, ::step])
        low, high = ZScaleInterval().get_limits(data)
        from matplotlib.figure import Figure

        fig = Figure(figsize=(3, 3), dpi=100)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.imshow(data, origin="lower", cmap="gray", vmin=low, vmax=high)
        ax.set_axis_off()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    except Exception:  # an unreadable file gets the placeholder, never a traceback
        return None


def thumbnail(settings: Settings, stored: str) -> bytes | None:
    """The PNG of an image recorded at ``stored`` (the path map and image roots applied); None when there
    is no readable file."""
    try:
        path = fits.checked_path(settings, stored)
        mtime = os.stat(path).st_mtime_ns
    except (OSError, ToolkitError):
        return None
    return _thumbnail_png(str(path), mtime)


_PLACEHOLDER = (
    '<div class="contimg-thumbnail-missing" style="width:150px;height:150px;border:1px dashed #8c959f;'
    'display:flex;align-items:center;justify-content:center;color:#57606a;font-size:11px">no image file</div>'
)


class ImagePanel(Panel):
    kind = "image"

    def load(self) -> None:
        async def work(api: AsyncClient) -> tuple[Any, Any, bytes | None]:
            image, qa = await asyncio.gather(api.images.get(self.ident), api.qa.image(self.ident))
            png = await asyncio.to_thread(thumbnail, api.settings, image.path)
            return image, qa, png

        def done(result: tuple[Any, Any, bytes | None]) -> None:
            image, qa, png = result
            self.image, self.qa = image, qa
            picture: w.Widget = w.Image(value=png, format="png", width=150) if png else w.HTML(_PLACEHOLDER)
            self.qa_html = w.HTML(qa_card(qa))
            links = w.HBox(
                [
                    self.link("MS", "ms", image.ms_path),
                    self.link("job", "job", image.run_id),
                    self.link("log", "log", image.run_id),
                ]
            )
            self.body.children = (
                w.HBox([picture, self.qa_html]),
                links,
                self.notes_box(("image", image.path), on_write=self.reload_qa),
                w.HTML(fields_html(image.to_dict())),
            )
            self.loaded(image)

        self.runner.start(work, done, self.show_error)

    def reload_qa(self) -> None:
        """The QA line again (after a sign-off in the notes box changed the grade that stands)."""

        def done(qa: Any) -> None:
            self.qa = qa
            self.qa_html.value = qa_card(qa)

        self.runner.start(lambda api: api.qa.image(self.image.path), done, self.show_error)


def qa_card(qa: Any) -> str:
    """An image's QA: the computed grade and its reasons, and the sign-off in force when there is one."""
    grade = html.escape(qa.grade)
    if qa.signoff_grade is not None:
        grade += f" (signed off {html.escape(qa.signoff_grade)} by {html.escape(qa.signoff_by or '?')})"
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in qa.flags) or "<li>all checks passed</li>"
    return f'<div class="contimg-qa"><b>QA: {grade}</b> — {html.escape(qa.summary)}<ul>{reasons}</ul></div>'


class MSPanel(Panel):
    kind = "MS"

    def load(self) -> None:
        def done(ms: Any) -> None:
            self.ms = ms
            tables = "".join(
                f"<li>{html.escape(t.table_type or '')} {html.escape(t.path)}</li>" for t in ms.cal_tables
            )
            links = [self.link(f"image {Path(p).name}", "image", p) for p in ms.images[:6]]
            self.body.children = (
                w.HBox([self.link("job", "job", ms.run_id), *links], layout=w.Layout(flex_flow="row wrap")),
                w.HTML(f"<b>cal tables applied</b><ul>{tables or '<li>none</li>'}</ul>"),
                self.notes_box(("ms", ms.path)),
                w.HTML(fields_html(ms.to_dict(), skip=("cal_tables", "primary_cal_table", "images"))),
            )
            self.loaded(ms)

        self.runner.start(lambda api: api.ms.get(self.ident), done, self.show_error)


class CalTablePanel(Panel):
    kind = "cal table"

    def load(self) -> None:
        def done(table: Record) -> None:
            self.body.children = (w.HTML(fields_html(table.to_dict())),)
            self.loaded(table)

        self.runner.start(lambda api: api.cal.get(self.ident), done, self.show_error)


class SourcePanel(Panel):
    """A source: its light curve (wheel to zoom; hover shows a point's image and that image's QA grade; a
    click opens the image), details and notes."""

    kind = "source"

    def load(self) -> None:
        async def work(api: AsyncClient) -> tuple[Any, pd.DataFrame, dict[str, str]]:
            source, curve = await asyncio.gather(
                api.sources.get(self.ident), api.sources.lightcurve(self.ident)
            )
            grades: dict[str, str] = {}
            if len(curve) and curve["measured_at"].notna().any():
                # The images of these points, graded: bounded by the light curve's own time span
                since = curve["measured_at"].min() - pd.Timedelta(days=1)
                until = curve["measured_at"].max() + pd.Timedelta(days=1)
                graded = await api.qa.images(since=since, until=until)
                grades = dict(zip(graded["path"].astype(str), graded["final_grade"].astype(str), strict=True))
            return source, curve, grades

        def done(result: tuple[Any, pd.DataFrame, dict[str, str]]) -> None:
            source, curve, grades = result
            self.source, self.curve = source, curve
            self.plot = lightcurve_plot(curve, grades)
            self.plot.observe(self._clicked, names="click_count")
            self.body.children = (
                self.plot,
                self.notes_box(("source", source.source_id)),
                w.HTML(fields_html(source.to_dict(), skip=("images",))),
            )
            self.loaded(source)

        self.runner.start(work, done, self.show_error)

    @property
    def shown_points(self) -> int:
        """Points inside the plot's current view (what a zoom leaves on screen)."""
        x0, x1, y0, y1 = self.plot.view
        mjd, flux = self.curve["mjd"], self.curve["flux_jy"] * 1e3
        return int(((mjd >= x0) & (mjd <= x1) & (flux >= y0) & (flux <= y1)).sum())

    def _clicked(self, _change: Mapping[str, Any]) -> None:
        mjd = self.curve["mjd"].to_numpy(dtype=float, na_value=np.nan)
        flux = (self.curve["flux_jy"] * 1e3).to_numpy(dtype=float, na_value=np.nan)
        hit = nearest(mjd, flux, self.plot.click_at, self.plot.view)
        if hit is not None:
            path = self.curve["image_path"].iloc[hit]
            if pd.notna(path):
                self.show("image", str(path))


def lightcurve_plot(curve: pd.DataFrame, grades: Mapping[str, str]) -> Scatter:
    """A light curve as an interactive plot: flux (mJy) against MJD, points coloured by their image's grade."""
    flux = (curve["flux_jy"] * 1e3).to_numpy(dtype=float, na_value=np.nan)
    mjd = curve["mjd"].to_numpy(dtype=float, na_value=np.nan)
    paths = curve["image_path"].astype(str).tolist()
    colours = {"good": "#1a7f37", "warn": "#bf8700", "fail": "#cf222e"}
    view = padded_view(mjd, flux)
    plot = Scatter(
        x=finite_or_none(mjd),
        y=finite_or_none(flux),
        colours=[colours.get(grades.get(p, ""), "#0969da") for p in paths],
        labels=[
            f"MJD {m:.4f} · {f:.2f} mJy · {PurePosixPath(p).name} · QA {grades.get(p, 'unknown')}"
            for m, f, p in zip(mjd, flux, paths, strict=True)
        ],
        view=view,
        home=view,
        x_label="MJD",
        y_label="flux (mJy)",
        height=300,
    )
    plot.add_class("contimg-lightcurve")
    return plot


class JobPanel(Panel):
    """A job's fields and its log: the tail, a level filter, a search box, and a live follow toggle."""

    kind = "job"

    def load(self) -> None:
        self.lines: list[str] = []
        self._render_pending = False
        self._follow_task: asyncio.Task[None] | None = None
        self.tail_n = w.BoundedIntText(
            value=200, min=10, max=LOG_BUFFER_LINES, description="tail", layout=w.Layout(width="160px")
        )
        self.level = w.Dropdown(options=list(LEVELS), description="level", layout=w.Layout(width="180px"))
        self.search = w.Text(description="search", continuous_update=True, layout=w.Layout(width="260px"))
        self.follow = w.ToggleButton(value=False, description="follow", icon="play")
        self.follow.add_class("contimg-follow")
        self.log_view = w.HTML()
        self.log_view.add_class("contimg-log")
        for control in (self.level, self.search):
            control.observe(lambda _c: self.render_log(), names="value")
        self.tail_n.observe(lambda _c: self.load_tail(), names="value")
        self.follow.observe(self._toggle_follow, names="value")
        self.log_status = w.HTML()

        def done(job: Any) -> None:
            self.job = job
            outputs = (job.artifacts or {}).get("images", []) if isinstance(job.artifacts, dict) else []
            self.body.children = (
                w.HBox(
                    [
                        self.link("MS", "ms", job.ms_path),
                        *[self.link("image", "image", p) for p in outputs[:3]],
                    ]
                ),
                *([self.notes_box(("job", job.run_id))] if job.run_id else []),
                w.HTML(fields_html(job.to_dict(), skip=("inline_log",))),
                w.HBox([self.tail_n, self.level, self.search, self.follow]),
                self.log_status,
                self.log_view,
            )
            self.loaded(job)
            self.load_tail()

        self.runner.start(lambda api: api.jobs.get(self.ident), done, self.show_error)

    @property
    def run_id(self) -> str:
        job = getattr(self, "job", None)
        return str(job.run_id if job is not None and job.run_id else self.ident)

    def load_tail(self) -> None:
        def done(tail: Any) -> None:
            self.lines = list(tail.lines)
            self.log_status.value = (
                f'<span style="color:#57606a">{html.escape(tail.source)} · {tail.size:,} bytes</span>'
            )
            self.render_log()

        def failed(message: str) -> None:
            self.log_status.value = f'<span style="color:#cf222e">{html.escape(message)}</span>'

        self.runner.start(lambda api: api.logs.tail(self.run_id, n=int(self.tail_n.value)), done, failed)

    def visible_lines(self) -> list[str]:
        lines = self.lines
        if self.level.value != "all":
            lines = [ln for ln in lines if self.level.value in ln]
        needle = self.search.value.strip().lower()
        if needle:
            lines = [ln for ln in lines if needle in ln.lower()]
        return lines

    def render_log(self) -> None:
        shown = self.visible_lines()[-1000:]
        text = html.escape("\n".join(shown))
        self.log_view.value = f'<pre style="max-height:320px;overflow:auto;font-size:11px;background:#f6f8fa;padding:6px">{text}</pre>'

    def _append(self, line: str) -> None:
        self.lines.append(line)
        del self.lines[:-LOG_BUFFER_LINES]
        # A burst of lines arrives as one callback each: render once after the burst, not once per line
        # (each render rebuilds up to 1,000 lines of HTML).
        if not self._render_pending:
            self._render_pending = True
            asyncio.get_running_loop().call_soon(self._render_after_burst)

    def _render_after_burst(self) -> None:
        self._render_pending = False
        self.render_log()

    def _toggle_follow(self, change: Mapping[str, Any]) -> None:
        if change["new"]:
            kernel_loop = asyncio.get_running_loop()
            run_id = self.run_id

            async def follow(api: AsyncClient) -> None:
                async for line in api.logs.follow(run_id, from_end=True, poll_interval=0.2):
                    kernel_loop.call_soon_threadsafe(self._append, line)

            self._follow_task = self.runner.stream(follow)
            self.follow.icon = "stop"
        else:
            self.runner.cancel(self._follow_task)
            self._follow_task = None
            self.follow.icon = "play"

    @property
    def following(self) -> bool:
        return self._follow_task is not None and not self._follow_task.done()


PANELS: dict[str, type[Panel]] = {
    "image": ImagePanel,
    "ms": MSPanel,
    "source": SourcePanel,
    "job": JobPanel,
    "log": JobPanel,
    "cal": CalTablePanel,
}


def make_panel(client: AnyClient, kind: str, ident: Any, opener: Opener | None = None) -> Panel:
    return PANELS[kind](client, ident, opener)
