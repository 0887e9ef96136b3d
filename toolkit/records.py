"""Typed records returned by the ``get`` calls: frozen dataclasses with ``to_dict()`` and a notebook card."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, Self, TypedDict

import pandas as pd

_GRADE_COLOURS = {"good": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e"}


def parse_json(text: Any) -> Any:
    """JSON text from a table -> Python; NULL -> None; text that does not parse is kept as the raw string."""
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return None
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="records")
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _cell(value: Any) -> str:
    if value is None:
        return '<span style="color:#888">—</span>'
    if isinstance(value, Record):
        return html.escape(value.title())
    if isinstance(value, pd.DataFrame):
        return str(value.head(10).to_html(max_rows=10))
    if isinstance(value, tuple | list):
        if not value:
            return '<span style="color:#888">none</span>'
        shown = "<br>".join(_cell(v) for v in value[:10])
        return shown + (f"<br>… {len(value) - 10} more" if len(value) > 10 else "")
    if isinstance(value, dict):
        return "<code>" + html.escape(json.dumps(value, default=str)[:300]) + "</code>"
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape(str(value))


def _in_order(record: Any) -> list[Field[Any]]:
    """A record's fields as a reader expects them: a base class's keyword-only fields (the sign-off of a
    QA summary) after the record's own, where dataclasses would put them first."""
    found = fields(record)
    return [f for f in found if not f.kw_only] + [f for f in found if f.kw_only]


class Record:
    """Behaviour shared by every record; subclasses are frozen dataclasses."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any], **values: Any) -> Self:
        """Build from a row (plain values), taking each field from the row unless given in ``values``."""
        names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        return cls(**{name: values[name] if name in values else row.get(name) for name in names})

    _title_field: ClassVar[str] = ""
    _hidden: ClassVar[frozenset[str]] = frozenset()
    # The widget panel that browses this kind of record, and the field that names it (see _browse_hint).
    _panel: ClassVar[tuple[str, str] | None] = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in _in_order(self)}

    def title(self) -> str:
        return f"{type(self).__name__} {getattr(self, self._title_field, '')}"

    def _repr_html_(self) -> str:
        grade = getattr(self, "qa_grade", None)
        badge = ""
        if isinstance(grade, str):
            colour = _GRADE_COLOURS.get(grade, "#57606a")
            badge = (
                f' <span style="background:{colour};color:white;border-radius:4px;padding:0 6px">'
                f"{html.escape(grade)}</span>"
            )
        rows = "".join(
            f'<tr><th style="text-align:left;padding-right:1em">{html.escape(f.name)}</th>'
            f'<td style="text-align:left">{_cell(getattr(self, f.name))}</td></tr>'
            for f in _in_order(self)
            if f.name not in self._hidden
        )
        return (
            '<div style="border:1px solid #d0d7de;border-radius:6px;padding:6px 10px;display:inline-block">'
            f"<b>{html.escape(self.title())}</b>{badge}<table>{rows}</table>{self._browse_hint()}</div>"
        )

    def _browse_hint(self) -> str:
        """A line telling how to open this record in its widget panel."""
        if self._panel is None:
            return ""
        panel, field_name = self._panel
        return (
            '<div style="color:#57606a;font-size:90%">browse: '
            f"<code>toolkit.widgets.{panel}(client, {html.escape(repr(getattr(self, field_name)))})</code></div>"
        )


@dataclass(frozen=True)
class CalTable(Record):
    _panel: ClassVar[tuple[str, str] | None] = ("CalTablePanel", "path")
    _title_field: ClassVar[str] = "path"

    id: int | None
    path: str
    set_name: str | None
    table_type: str | None
    order_index: int | None
    status: str | None
    cal_field: str | None
    refant: str | None
    created_at: datetime | None
    valid_start_mjd: float | None
    valid_end_mjd: float | None
    source_ms_path: str | None
    notes: str | None
    solver_command: str | None
    solver_version: str | None
    solver_params: Any
    quality_metrics: Any


@dataclass(frozen=True)
class Image(Record):
    _panel: ClassVar[tuple[str, str] | None] = ("ImagePanel", "id")
    _title_field: ClassVar[str] = "path"

    id: int
    path: str
    ms_path: str | None
    type: str | None
    created_at: datetime | None
    qa_grade: str | None
    run_id: str | None
    noise_jy: float | None
    beam_major_arcsec: float | None
    beam_minor_arcsec: float | None
    beam_pa_deg: float | None
    dynamic_range: float | None
    pbcor: bool | None
    format: str | None
    field_name: str | None
    center_ra_deg: float | None
    center_dec_deg: float | None
    imsize_x: int | None
    imsize_y: int | None
    cellsize_arcsec: float | None
    freq_ghz: float | None
    bandwidth_mhz: float | None
    integration_sec: float | None
    cal_table: str | None = None  # the first table of the registry's set for its MS, in apply order
    qa_summary: str | None = None  # "grade: reasons", as qa.image grades it


@dataclass(frozen=True)
class MeasurementSet(Record):
    _panel: ClassVar[tuple[str, str] | None] = ("MSPanel", "path")
    _title_field: ClassVar[str] = "path"

    path: str
    stage: str | None
    status: str | None
    qa_grade: str | None
    run_id: str | None
    start_mjd: float | None
    mid_mjd: float | None
    end_mjd: float | None
    processed_at: datetime | None
    stage_updated_at: datetime | None
    cal_applied: bool | None
    ra_deg: float | None  # the pointing centre where recorded, else the phase centre
    dec_deg: float | None
    pointing_ra_deg: float | None
    pointing_dec_deg: float | None
    phase_ra_deg: float | None
    phase_dec_deg: float | None
    field_name: str | None
    group_id: str | None
    imagename: str | None
    images: tuple[str, ...] = ()
    cal_tables: tuple[CalTable, ...] = ()
    primary_cal_table: CalTable | None = None


@dataclass(frozen=True)
class Source(Record):
    _panel: ClassVar[tuple[str, str] | None] = ("SourcePanel", "source_id")
    _title_field: ClassVar[str] = "source_id"

    source_id: str
    ra_deg: float
    dec_deg: float
    n_measurements: int
    first_mjd: float | None
    last_mjd: float | None
    mean_flux_jy: float | None
    max_flux_jy: float | None
    nvss_flux_mjy: float | None
    images: tuple[str, ...] = ()
    name: str | None = None  # the J2000 designation of its mean position
    latest_image_id: int | None = None  # the image of its newest measurement
    # one row per image it was measured in: image_id, path, ms_path, qa_grade, created_at, mjd (oldest first)
    contributing_images: pd.DataFrame = field(repr=False, compare=False, default_factory=pd.DataFrame)


@dataclass(frozen=True)
class Job(Record):
    _panel: ClassVar[tuple[str, str] | None] = ("JobPanel", "run_id")
    _title_field: ClassVar[str] = "run_id"
    _hidden: ClassVar[frozenset[str]] = frozenset({"inline_log"})

    id: int | None
    run_id: str | None
    type: str | None
    status: str | None
    ms_path: str | None
    params: Any
    artifacts: Any
    cal_table: str | None
    output_image: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration: timedelta | None
    derived: bool = False
    inline_log: str | None = field(default=None, repr=False)
    output_image_id: int | None = None
    phase_ra_deg: float | None = None  # its MS's phase centre
    phase_dec_deg: float | None = None
    cal_table_match: CalTable | None = None  # the registry's table for its MS (first in apply order)


class TimeBounds(TypedDict):
    """``since``/``until`` keyword arguments, as ``**bounds``."""

    since: datetime
    until: datetime


@dataclass(frozen=True)
class Night(Record):
    """The last night that has data (``client.last_night()``): a UTC day, ``start`` to ``end`` inclusive as
    ``since``/``until`` are, and the newest image (or MS observation) in it. ``night.bounds`` is
    ``{"since": start, "until": end}``, for any call that takes them: ``client.qa.images(**night.bounds)``."""

    _title_field: ClassVar[str] = "date"

    date: date
    start: datetime
    end: datetime
    newest: datetime

    @property
    def bounds(self) -> TimeBounds:
        return {"since": self.start, "until": self.end}

    def title(self) -> str:
        return f"night of {self.date:%Y-%m-%d} (00:00-24:00 UTC; newest data {self.newest:%H:%M} UTC)"


@dataclass(frozen=True)
class Stats(Record):
    _title_field: ClassVar[str] = "ms_total"

    ms_total: int
    ms_by_stage: dict[str, int]
    images_total: int
    photometry_rows: int
    unique_sources: int
    jobs_total: int
    jobs_by_status: dict[str, int]
    cal_tables_total: int
    recent_images: pd.DataFrame = field(repr=False, compare=False, default_factory=pd.DataFrame)
    # when the counts were read (UTC): a notebook's output says how old its numbers are
    generated_at: datetime | None = field(default=None, compare=False)

    def title(self) -> str:
        return "Pipeline statistics"


@dataclass(frozen=True, kw_only=True)
class QARecord(Record):
    """A QA summary: a compact card with the grade, the summary line, the reasons and the metrics.

    From the notes: the sign-off in force, if any, and ``final_grade``, the grade that stands (the
    sign-off's, else the computed one)."""

    signoff_grade: str | None = None
    signoff_by: str | None = None
    signoff_at: datetime | None = None
    signoff_reason: str | None = None
    final_grade: str | None = None

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in _in_order(self) if f.repr)
        return f"{type(self).__name__}({shown})"

    def _repr_html_(self) -> str:
        computed = str(getattr(self, "grade", ""))
        grade = self.final_grade or computed
        colour = _GRADE_COLOURS.get(grade, "#57606a")
        signed = ""
        if self.signoff_grade is not None:
            when = f" on {self.signoff_at:%Y-%m-%d %H:%M} UTC" if self.signoff_at is not None else ""
            signed = (
                f'<div style="margin:4px 0;background:#f6f8fa;border-radius:4px;padding:2px 6px">'
                f"<b>signed off {html.escape(self.signoff_grade)}</b> by {html.escape(self.signoff_by or '?')}"
                f"{when} (computed: {html.escape(computed)}): {html.escape(self.signoff_reason or '')}</div>"
            )
        flags = "".join(f"<li>{html.escape(f)}</li>" for f in getattr(self, "flags", ()))
        missing = "".join(f"<li>{html.escape(f)}</li>" for f in getattr(self, "not_assessed", ()))
        metrics = getattr(self, "metrics", {}) or {}
        rows = "".join(
            f'<tr><th style="text-align:left;padding-right:1em">{html.escape(k)}</th><td>{_cell(v)}</td></tr>'
            for k, v in metrics.items()
        )
        return (
            f'<div style="border:1px solid #d0d7de;border-left:6px solid {colour};border-radius:6px;'
            'padding:6px 10px;display:inline-block;max-width:60em">'
            f'<b>{html.escape(self.title())}</b> <span style="background:{colour};color:white;border-radius:4px;'
            f'padding:0 6px">{html.escape(grade)}</span>'
            f'<div style="margin:4px 0">{html.escape(str(getattr(self, "summary", "")))}</div>'
            + signed
            + (
                f'<div style="color:{colour}"><b>flags</b><ul style="margin:0">{flags}</ul></div>'
                if flags
                else ""
            )
            + (
                f'<div style="color:#57606a"><b>not assessed</b><ul style="margin:0">{missing}</ul></div>'
                if missing
                else ""
            )
            + (f'<table style="font-size:90%">{rows}</table>' if rows else "")
            + "</div>"
        )


@dataclass(frozen=True, repr=False)  # QARecord's repr: the sign-off last
class ImageQA(QARecord):
    _title_field: ClassVar[str] = "path"

    image_id: int
    path: str
    grade: str
    summary: str
    metrics: dict[str, Any]
    flags: tuple[str, ...]
    not_assessed: tuple[str, ...]
    checks: dict[str, str]
    graded_by: str
    timestamp: datetime | None


@dataclass(frozen=True, repr=False)  # QARecord's repr: the sign-off last
class MeasurementSetQA(QARecord):
    _title_field: ClassVar[str] = "ms_path"

    ms_path: str
    grade: str
    summary: str
    stage: str | None
    status: str | None
    cal_applied: bool | None
    metrics: dict[str, Any]
    flags: tuple[str, ...]
    not_assessed: tuple[str, ...]
    checks: dict[str, str]
    graded_by: str
    timestamp: datetime | None


@dataclass(frozen=True, repr=False)  # QARecord's repr: the sign-off last
class JobQA(QARecord):
    _title_field: ClassVar[str] = "run_id"

    run_id: str | None
    grade: str
    summary: str
    ms_path: str | None
    cal_table: str | None
    flags: tuple[str, ...]
    not_assessed: tuple[str, ...]
    checks: dict[str, str]
    queue_status: str | None
    pipeline_config: Any
    metrics: dict[str, Any]
    timestamp: datetime | None


@dataclass(frozen=True, repr=False)  # QARecord's repr: the sign-off last
class SourceQA(QARecord):
    """A source's QA: checks with reasons over its measurements (failed or warned images, gaps, flux
    outliers, distance from the image centre)."""

    _title_field: ClassVar[str] = "source_id"
    _panel: ClassVar[tuple[str, str] | None] = ("SourcePanel", "source_id")

    source_id: str
    grade: str
    summary: str
    n_measurements: int
    metrics: dict[str, Any]
    flags: tuple[str, ...]
    not_assessed: tuple[str, ...]
    checks: dict[str, str]
    graded_by: str


@dataclass(frozen=True)
class QueueGroup(Record):
    _title_field: ClassVar[str] = "group_id"

    group_id: str
    state: str | None
    received_at: datetime | None
    last_update: datetime | None
    expected_subbands: int | None
    retry_count: int | None
    error: str | None
    checkpoint_path: str | None
    processing_stage: str | None
    chunk_minutes: float | None
    subbands: tuple[int, ...] = ()
    files: tuple[str, ...] = ()
    missing: tuple[int, ...] = ()


@dataclass(frozen=True)
class PipelineJob(Record):
    """A job in the pipeline's RQ queue (``client.jobs_queue``). ``result`` holds the job's return value when
    it is plain data; otherwise ``result_note`` says what it is and ``result_pickle`` keeps the raw pickle,
    which the toolkit never unpickles (see :mod:`toolkit.rqdata`)."""

    _title_field: ClassVar[str] = "job_id"
    _hidden: ClassVar[frozenset[str]] = frozenset({"result_pickle"})

    job_id: str
    status: str | None
    func_name: str | None
    args: str | None
    description: str | None
    origin: str | None
    created_at: datetime | None
    enqueued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    worker_name: str | None
    timeout_s: float | None
    error: str | None  # the exception line of a failed job's traceback
    traceback: str | None
    result: Any
    result_note: str | None
    result_pickle: bytes | None = field(default=None, repr=False)

    @property
    def duration(self) -> timedelta | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


@dataclass(frozen=True)
class PipelineQueueStats(Record):
    """How many jobs the pipeline's RQ queue holds in each state, and how many workers listen to it."""

    _title_field: ClassVar[str] = "queue_name"

    queue_name: str
    counts: dict[str, int]
    workers: int

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class QueueStats(Record):
    total: int
    by_state: dict[str, int]
    by_stage: dict[str, int]
    oldest_pending: str | None
    oldest_pending_age: timedelta | None
    retries: int

    def title(self) -> str:
        return "Ingest queue"
