"""``client.qa``: grade images, measurement sets and jobs on their metrics, and build QA reports.

SQL is built here (pure functions); each call asks the database once and grades the frame in the backend's
worker thread (the ``post`` hook), so neither the query nor the grading runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import frames
from ..arguments import (
    TimeLike,
    as_of_time,
    check_choices,
    check_limit,
    check_text,
    check_time_range,
)
from ..cache import cached
from ..db.base import Catalog
from ..db.connections import Connections
from ..errors import RecordNotFoundError, ToolkitError, ValidationError
from ..notes import read as notes_read
from ..notes.model import with_final_grade
from ..notes.read import SIGN_OFF_COLUMNS, NotesJoin
from ..qa import sources as source_qa
from ..qa.grade import grade, status_column
from ..qa.report import TARGET_COLUMNS, QAReport
from ..qa.rules import QARules, Rule
from ..records import ImageQA, JobQA, MeasurementSetQA, SourceQA, parse_json
from ..schema import Kind
from ..vocab import GRADES, MS_STAGES
from . import jobs as jobs_domain
from . import sources as sources_domain
from .images import ImageFilters, filter_one_image
from .listing import fetch_listing
from .logs import Logs
from .ms import MSFilters
from .nights import last_night
from .query import IMAGES_WITH_MS, Select, column_or_null

RulesLike = QARules | str | os.PathLike[str] | Mapping[str, Any] | None
_CALIBRATED = MS_STAGES.index("calibrated")
_IN_FLIGHT = ("pending", "in_progress")  # MS statuses in which time in stage counts
# Each failed job costs one log read for its first error; a report shows at most this many.
MAX_FAILED_JOBS_WITH_LOGS = 50

IMAGE_KINDS: dict[str, Kind] = {
    "id": "int",
    "path": "text",
    "ms_path": "text",
    "type": "text",
    "created_at": "time",
    "ms_stage": "text",
    "rms_noise_jy": "real",
    "dynamic_range": "real",
    "beam_major_arcsec": "real",
    "beam_minor_arcsec": "real",
    "num_sources": "int",
    "pb_corrected": "bool",
    "qa_timestamp": "time",
}
# (column, JSON source, key) of the calibration metrics kept in JSON blobs.
_CAL_JSON = (
    ("k_delay_rms_ns", "k_metrics", "delay_rms_ns"),
    ("bp_amp_rms", "bp_metrics", "amp_rms"),
    ("bp_phase_rms_deg", "bp_metrics", "phase_rms_deg"),
    ("g_amp_scatter", "g_metrics", "amp_scatter"),
)
MS_KINDS: dict[str, Kind] = {
    "ms_path": "text",
    "stage": "text",
    "status": "text",
    "cal_applied": "bool",
    "mid_mjd": "real",
    "stage_updated_at": "time",
    "flagged_fraction": "real",
    **{column: "real" for column, _, _ in _CAL_JSON},
    **{f"{source}__broken": "bool" for source in ("k_metrics", "bp_metrics", "g_metrics")},
    "qa_timestamp": "time",
}
_IMAGE_METRICS = (
    "rms_noise_jy",
    "dynamic_range",
    "beam_major_arcsec",
    "beam_minor_arcsec",
    "beam_ellipticity",
    "num_sources",
    "pb_corrected",
)
_MS_METRICS = ("hours_in_stage", "flagged_fraction", *(c for c, _, _ in _CAL_JSON))
_JOB_METRICS = ("duration_min",)
_SOURCE_MEASUREMENTS = (
    "source_id", "mjd", "flux_jy", "peak_jyb", "ra_deg", "dec_deg", "image_path", "sep_from_center_deg",
)  # fmt: skip
# What source QA costs a measurement while a chunk is computed: its eight columns (two strings, the image
# path long) read through Arrow, the sorted copy, and the per-row temporaries of the checks.
_SOURCE_QA_BYTES_PER_ROW = 1024
_SOURCE_IMAGE_KINDS: dict[str, Kind] = {**IMAGE_KINDS, "center_ra_deg": "real", "center_dec_deg": "real"}


# ------------------------------------------------------------------------------------------- SQL
def image_metrics_select(catalog: Catalog, *, one: bool = False) -> Select:
    """One row per image: its metrics (image_qa's newest row where there is one, else the images table).

    ``one``: the query will match a single image, so look its QA row up directly instead of grouping the
    whole image_qa table first (which is what pays off for many images).
    """
    has_qa = catalog.has_table("image_qa")

    def qa(name: str) -> str:
        return f"q.{name}" if has_qa else "NULL"

    def image(name: str) -> str:
        return column_or_null(catalog, "images", "i", name)

    pbcor = image("pbcor")
    pb_corrected = (
        "NULL"
        if pbcor == "NULL"
        else f"(COALESCE({pbcor}, 0) = 1 OR EXISTS (SELECT 1 FROM images AS p WHERE p.ms_path = i.ms_path AND p.pbcor = 1))"
    )
    columns = [
        "i.id AS id",
        "i.path AS path",
        "i.ms_path AS ms_path",
        "i.type AS type",
        "i.created_at AS created_at",
        "m.stage AS ms_stage",
        f"COALESCE({qa('rms_noise')}, {image('noise_jy')}) AS rms_noise_jy",
        f"COALESCE({qa('dynamic_range')}, {image('dynamic_range')}) AS dynamic_range",
        f"COALESCE({qa('beam_major')}, {image('beam_major_arcsec')}) AS beam_major_arcsec",
        f"COALESCE({qa('beam_minor')}, {image('beam_minor_arcsec')}) AS beam_minor_arcsec",
        f"{qa('num_sources')} AS num_sources",
        f"{pb_corrected} AS pb_corrected",
        f"{qa('timestamp')} AS qa_timestamp",
    ]
    source = IMAGES_WITH_MS
    if has_qa and one:
        source += (
            " LEFT JOIN image_qa AS q ON q.id = (SELECT MAX(id) FROM image_qa WHERE image_path = i.path)"
        )
    elif has_qa:
        # The newest QA row per image; grouping first lets SQLite index the grouped rows once.
        source += (
            " LEFT JOIN (SELECT image_path, MAX(id) AS id FROM image_qa GROUP BY image_path) AS lq"
            " ON lq.image_path = i.path LEFT JOIN image_qa AS q ON q.id = lq.id"
        )
    q = Select(columns, source)
    q.order_by = "i.created_at DESC, i.id DESC"
    return q


def ms_metrics_select(catalog: Catalog, *, one: bool = False) -> Select:
    """One row per MS: stage, status, calibration applied, and the newest calibration_qa metrics
    (``one`` as in :func:`image_metrics_select`)."""
    has_qa = catalog.has_table("calibration_qa")

    def cal(name: str) -> str:
        return f"c.{name}" if has_qa else "NULL"

    columns = [
        "m.path AS ms_path",
        "m.stage AS stage",
        "m.status AS status",
        f"{column_or_null(catalog, 'ms_index', 'm', 'cal_applied')} AS cal_applied",
        "m.mid_mjd AS mid_mjd",
        f"{column_or_null(catalog, 'ms_index', 'm', 'stage_updated_at')} AS stage_updated_at",
        f"{cal('flags_total')} AS flagged_fraction",
    ]
    for column, blob, key in _CAL_JSON:
        # A malformed blob must not sink the query (json_extract raises on it in SQLite): the dialect's
        # number extraction is NULL for anything that is not a number inside a readable object.
        columns.append(
            f"{catalog.dialect.json_number(cal(blob), key)} AS {column}" if has_qa else f"NULL AS {column}"
        )
    for blob in ("k_metrics", "bp_metrics", "g_metrics"):
        columns.append(
            f"{catalog.dialect.json_broken(cal(blob))} AS {blob}__broken"
            if has_qa
            else f"0 AS {blob}__broken"
        )
    columns.append(f"{cal('timestamp')} AS qa_timestamp")
    source = "ms_index AS m"
    if has_qa and one:
        source += " LEFT JOIN calibration_qa AS c ON c.id = (SELECT MAX(id) FROM calibration_qa WHERE ms_path = m.path)"
    elif has_qa:
        source += (
            " LEFT JOIN (SELECT ms_path, MAX(id) AS id FROM calibration_qa GROUP BY ms_path) AS lc"
            " ON lc.ms_path = m.path LEFT JOIN calibration_qa AS c ON c.id = lc.id"
        )
    q = Select(columns, source)
    q.order_by = "m.mid_mjd DESC, m.path DESC"
    return q


# ------------------------------------------------------------------------ derived metrics + grading
def _image_post(rules: QARules) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def post(frame: pd.DataFrame) -> pd.DataFrame:
        with np.errstate(divide="ignore", invalid="ignore"):
            frame["beam_ellipticity"] = 1.0 - frame["beam_minor_arcsec"] / frame["beam_major_arcsec"]
        return grade(frame, rules.checks("image"), fallback_stage="ms_stage", subject="image metrics")

    return post


def _ms_post(rules: QARules, now: pd.Timestamp) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def post(frame: pd.DataFrame) -> pd.DataFrame:
        rank = pd.Categorical(frame["stage"], categories=MS_STAGES).codes
        calibrated = pd.Series(rank >= _CALIBRATED, index=frame.index)
        frame["hours_in_stage"] = (now - frame["stage_updated_at"]).dt.total_seconds() / 3600.0
        frame["hours_in_stage__applies"] = frame["status"].isin(_IN_FLIGHT).fillna(False)
        frame["cal_applied__applies"] = calibrated
        for column in ("flagged_fraction", *(c for c, _, _ in _CAL_JSON)):
            frame[f"{column}__applies"] = calibrated
        graded = grade(frame, rules.checks("ms", "calibration"), subject="MS metrics")
        return graded.drop(columns=[c for c in graded.columns if c.endswith("__applies")])

    return post


def _job_post(rules: QARules, now: pd.Timestamp) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def post(frame: pd.DataFrame) -> pd.DataFrame:
        frame = jobs_domain.add_job_columns(frame)
        so_far = (now - frame["started_at"]).dt.total_seconds()
        running = frame["finished_at"].isna() & frame["status"].eq("running").fillna(False)
        frame["duration_min"] = frame["duration_s"].where(~running, so_far) / 60.0
        return grade(frame, rules.checks("job"), subject="job metrics")

    return post


def _metrics(row: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: row[name] for name in names if name in row}


def _split(text: Any) -> tuple[str, ...]:
    return () if text is None else tuple(str(text).split("; "))


def _checks(row: Mapping[str, Any], rules: list[Rule]) -> dict[str, str]:
    return {rule.key: str(row[status_column(rule)]) for rule in rules}


def check_grades(grades: str | list[str] | None, name: str) -> list[str] | None:
    wanted = check_choices(grades, name)
    unknown = sorted(set(wanted or ()) - set(GRADES))
    if unknown:
        raise ValidationError(f"unknown {name}(s) {unknown}; grades are {', '.join(GRADES)}")
    return wanted


def _grade_filter(frame: pd.DataFrame, grades: str | list[str] | None, column: str) -> pd.DataFrame:
    wanted = check_grades(grades, column)
    if wanted is None:
        return frame
    return frame[frame[column].isin(wanted)].reset_index(drop=True)


_IMAGE_NOTES = NotesJoin("image", TARGET_COLUMNS["image"], SIGN_OFF_COLUMNS)
_MS_NOTES = NotesJoin("ms", TARGET_COLUMNS["ms"], SIGN_OFF_COLUMNS)
_JOB_NOTES = NotesJoin("job", TARGET_COLUMNS["job"], SIGN_OFF_COLUMNS)


async def image_summary_line(connections: Connections, image_id: int) -> str | None:
    """One image's QA in a line (its grade and reasons, ``"warn: beam_ellipticity 0.45 > 0.4"``), under the
    site's rules."""
    db = await connections.products()
    rules = QARules.resolve(None)
    sql, params = filter_one_image(image_metrics_select(db.catalog, one=True), image_id).build()
    frame = await db.fetch_frame(sql, params, IMAGE_KINDS, post=_image_post(rules))
    if frame.empty:
        return None
    return str(frame["summary"].iloc[0])


class QA:
    """``client.qa``: metric-based grades with their reasons, for one object or many, and reports."""

    def __init__(self, connections: Connections, logs: Logs) -> None:
        self._connections = connections
        self._logs = logs

    # ------------------------------------------------------------------------------------ images
    async def images(
        self,
        *,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        type: str | list[str] | None = None,
        grade: str | list[str] | None = None,
        final_grade: str | list[str] | None = None,
        rules: RulesLike = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """One row per image (newest first): metrics, ``grade``, ``summary``, ``flags`` (the warn and fail
        reasons), ``not_assessed`` and a ``<check>_check`` status per check, then from the notes
        ``signoff_grade``, ``signoff_by``, ``signoff_at``, ``signoff_reason`` and ``final_grade`` (the
        sign-off where there is one, else the computed grade). ``since``/``until`` bound ``created_at``;
        ``grade`` keeps those computed grades, ``final_grade`` those final grades."""
        check_grades(grade, "grade")
        check_grades(final_grade, "final_grade")
        frame = await self._images(since=since, until=until, type=type, rules=rules, limit=limit)
        return await self._signed_off(frame, _IMAGE_NOTES, grade, final_grade)

    async def _signed_off(
        self,
        frame: pd.DataFrame,
        join: NotesJoin,
        grade_: str | list[str] | None,
        final_grade: str | list[str] | None,
    ) -> pd.DataFrame:
        frame = with_final_grade(await notes_read.annotate(self._connections, frame, join))
        frame = _grade_filter(frame, grade_, "grade")
        return _grade_filter(frame, final_grade, "final_grade")

    @cached("qa:images")
    async def _images(
        self,
        *,
        since: TimeLike | None,
        until: TimeLike | None,
        type: str | list[str] | None,
        rules: RulesLike,
        limit: int | None,
    ) -> pd.DataFrame:
        resolved = QARules.resolve(rules)
        limit, _ = check_limit(limit, 0)
        filters = ImageFilters(type=type, since=since, until=until)
        db = await self._connections.products()
        q = filters.apply(image_metrics_select(db.catalog), db.catalog)
        q.limit = limit
        frame = await fetch_listing(
            db,
            q,
            key="i.created_at",
            count_source="images AS i",
            kinds=IMAGE_KINDS,
            post=_image_post(resolved),
        )
        return frame

    async def image(self, id_or_path: int | str, *, rules: RulesLike = None) -> ImageQA:
        """The QA summary of one image, by id or path; ``RecordNotFoundError`` when there is none."""
        resolved = QARules.resolve(rules)
        db = await self._connections.products()
        sql, params = filter_one_image(image_metrics_select(db.catalog, one=True), id_or_path).build()
        frame = await db.fetch_frame(sql, params, IMAGE_KINDS, post=_image_post(resolved))
        if frame.empty:
            raise RecordNotFoundError("image", id_or_path)
        row = frames.first_row(frame)
        return ImageQA(
            image_id=row["id"],
            path=row["path"],
            grade=row["grade"],
            summary=row["summary"],
            metrics=_metrics(row, _IMAGE_METRICS),
            flags=_split(row["reasons"]),
            not_assessed=_split(row["not_assessed"]),
            checks=_checks(row, resolved.checks("image")),
            graded_by=row["graded_by"],
            timestamp=row["qa_timestamp"] or row["created_at"],
            **await notes_read.sign_off_of(self._connections, "image", row["path"], row["grade"]),
        )

    # ---------------------------------------------------------------------------- measurement sets
    async def ms_list(
        self,
        *,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        stage: str | list[str] | None = None,
        grade: str | list[str] | None = None,
        final_grade: str | list[str] | None = None,
        rules: RulesLike = None,
        as_of: TimeLike | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """One row per MS (newest observation first), graded on stage, status, calibration applied, time in
        stage and the calibration metrics, with the sign-off columns and ``final_grade`` as in
        :meth:`images`. ``since``/``until`` bound the observation (``mid_mjd``); ``as_of`` is the time
        "stuck" is measured to (default: now)."""
        check_grades(grade, "grade")
        check_grades(final_grade, "final_grade")
        frame = await self._ms_list(
            since=since, until=until, stage=stage, rules=rules, as_of=as_of, limit=limit
        )
        return await self._signed_off(frame, _MS_NOTES, grade, final_grade)

    @cached("qa:ms_list")
    async def _ms_list(
        self,
        *,
        since: TimeLike | None,
        until: TimeLike | None,
        stage: str | list[str] | None,
        rules: RulesLike,
        as_of: TimeLike | None,
        limit: int | None,
    ) -> pd.DataFrame:
        resolved = QARules.resolve(rules)
        limit, _ = check_limit(limit, 0)
        filters = MSFilters(stage=stage, since=since, until=until)
        db = await self._connections.products()
        q = filters.apply(ms_metrics_select(db.catalog), db.catalog)
        q.limit = limit
        frame = await fetch_listing(
            db,
            q,
            key="m.mid_mjd",
            count_source="ms_index AS m",
            kinds=MS_KINDS,
            post=_ms_post(resolved, as_of_time(as_of)),
        )
        return frame

    async def ms(
        self, path: str, *, rules: RulesLike = None, as_of: TimeLike | None = None
    ) -> MeasurementSetQA:
        """The QA summary of one MS; ``RecordNotFoundError`` when there is none."""
        resolved = QARules.resolve(rules)
        db = await self._connections.products()
        q = ms_metrics_select(db.catalog, one=True)
        q.filter("m.path = ?", check_text(path, "path"))
        sql, params = q.build()
        frame = await db.fetch_frame(sql, params, MS_KINDS, post=_ms_post(resolved, as_of_time(as_of)))
        if frame.empty:
            raise RecordNotFoundError("measurement set", path)
        row = frames.first_row(frame)
        return MeasurementSetQA(
            ms_path=row["ms_path"],
            grade=row["grade"],
            summary=row["summary"],
            stage=row["stage"],
            status=row["status"],
            cal_applied=row["cal_applied"],
            metrics=_metrics(row, _MS_METRICS),
            flags=_split(row["reasons"]),
            not_assessed=_split(row["not_assessed"]),
            checks=_checks(row, resolved.checks("ms", "calibration")),
            graded_by=row["graded_by"],
            timestamp=row["qa_timestamp"] or row["stage_updated_at"],
            **await notes_read.sign_off_of(self._connections, "ms", row["ms_path"], row["grade"]),
        )

    # ---------------------------------------------------------------------------------- sources
    async def sources(
        self,
        *,
        source_ids: Sequence[str] | None = None,
        grade: str | list[str] | None = None,
        rules: RulesLike = None,
    ) -> pd.DataFrame:
        """Source QA in bulk: one row per source (or per id of ``source_ids``) with its metrics, grade,
        summary, reasons and one ``<check>_check`` column per ``[source.*]`` rule.

        The checks: the share of its measurements made on images graded fail or warn (graded as
        ``qa.images`` grades them), the largest gap between measurements against the median cadence, fluxes
        more than 5 robust sigma from the median, and the largest distance from an image centre (where the
        schema records one). ``grade`` keeps sources with that grade. Reads two frames (measurements and
        graded images) in one round of queries; the grading runs in the backend's worker threads."""
        resolved = QARules.resolve(rules)
        wanted_grades = check_grades(grade, "grade")
        wanted = None if source_ids is None else sources_domain.check_source_ids(source_ids)
        frame = await self._source_frame(wanted, resolved)
        if wanted is not None:
            missing = sorted(set(wanted) - set(frame["source_id"]))
            if missing:
                raise RecordNotFoundError(
                    "source", missing[0], f"{len(missing)} of the source_ids have no photometry"
                )
        if wanted_grades is not None:
            frame = frame[frame["grade"].isin(wanted_grades)].reset_index(drop=True)
        return frame

    async def source(self, source_id: str, *, rules: RulesLike = None) -> SourceQA:
        """One source's QA (:meth:`sources` for one id) as a record with its checks and reasons;
        ``RecordNotFoundError`` when it has no photometry."""
        resolved = QARules.resolve(rules)
        frame = await self._source_frame([check_text(source_id, "source_id")], resolved)
        if frame.empty:
            raise RecordNotFoundError("source", source_id)
        row = frames.first_row(frame)
        return SourceQA(
            source_id=row["source_id"],
            grade=row["grade"],
            summary=row["summary"],
            n_measurements=row["n_measurements"],
            metrics=_metrics(row, source_qa.METRIC_COLUMNS[1:]),
            flags=_split(row["reasons"]),
            not_assessed=_split(row["not_assessed"]),
            checks=_checks(row, resolved.checks("source")),
            graded_by=row["graded_by"],
            **await notes_read.sign_off_of(self._connections, "source", row["source_id"], row["grade"]),
        )

    async def _source_frame(self, source_ids: list[str] | None, rules: QARules) -> pd.DataFrame:
        db = await self._connections.products()
        images = image_metrics_select(db.catalog, one=source_ids is not None)
        images.columns = [
            *images.columns,
            *(
                f"{column_or_null(db.catalog, 'images', 'i', c)} AS {c}"
                for c in ("center_ra_deg", "center_dec_deg")
            ),
        ]
        if source_ids is not None:  # only the images these sources were measured in
            clause, values = db.catalog.dialect.in_list("s.source_id", source_ids)
            images.filter(f"i.path IN (SELECT s.image_path FROM photometry AS s WHERE {clause})", *values)
        isql, iparams = images.build()

        def compute(measurements: pd.DataFrame, graded: pd.DataFrame) -> pd.DataFrame:
            measurements["flux"] = measurements["flux_jy"].fillna(measurements["peak_jyb"])
            metrics = source_qa.source_metrics(measurements, graded)
            return grade(metrics, rules.checks("source"), subject="source metrics")

        if source_ids is None:
            # Every source: the graded images once, then the photometry in chunks of whole sources under the
            # memory budget (each source's metrics need its own rows only), as the science calls read it.
            graded = await db.fetch_frame(isql, iparams, _SOURCE_IMAGE_KINDS, post=_image_post(rules))
            parts = [
                part
                async for part in sources_domain.per_source_parts(
                    self._connections,
                    functools.partial(compute, graded=graded),
                    _SOURCE_MEASUREMENTS,
                    bytes_per_row=_SOURCE_QA_BYTES_PER_ROW,
                )
            ]
            return await db.compute(sources_domain.join_parts, parts, ["source_id"])
        msql, mparams = sources_domain.measurements_query(
            db, source_ids=source_ids, start_mjd=None, end_mjd=None, columns=_SOURCE_MEASUREMENTS
        )
        measurements, graded = await asyncio.gather(
            db.fetch_frame(msql, mparams, sources_domain.PHOTOMETRY_KINDS),
            db.fetch_frame(isql, iparams, _SOURCE_IMAGE_KINDS, post=_image_post(rules)),
        )
        return await db.compute(compute, measurements, graded)

    # ------------------------------------------------------------------------------------- jobs
    async def jobs(
        self,
        *,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        status: str | list[str] | None = None,
        grade: str | list[str] | None = None,
        final_grade: str | list[str] | None = None,
        rules: RulesLike = None,
        as_of: TimeLike | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """One row per job (newest first), graded on status and run time, with the sign-off columns and
        ``final_grade`` as in :meth:`images`."""
        check_grades(grade, "grade")
        check_grades(final_grade, "final_grade")
        frame = await self._jobs(
            since=since, until=until, status=status, rules=rules, as_of=as_of, limit=limit
        )
        return await self._signed_off(frame, _JOB_NOTES, grade, final_grade)

    @cached("qa:jobs")
    async def _jobs(
        self,
        *,
        since: TimeLike | None,
        until: TimeLike | None,
        status: str | list[str] | None,
        rules: RulesLike,
        as_of: TimeLike | None,
        limit: int | None,
    ) -> pd.DataFrame:
        resolved = QARules.resolve(rules)
        db = await self._connections.products()
        filters = jobs_domain.JobFilters(status=status, since=since, until=until)
        sql, params = jobs_domain.LISTING.list_select(db.catalog, filters, limit=limit).build()
        frame = await db.fetch_frame(
            sql, params, jobs_domain.KINDS, post=_job_post(resolved, as_of_time(as_of))
        )
        return frame

    async def job(
        self, run_id: str | int, *, rules: RulesLike = None, as_of: TimeLike | None = None
    ) -> JobQA:
        """The QA summary of one job by run id (or integer id)."""
        resolved = QARules.resolve(rules)
        db = await self._connections.products()
        sql, params = jobs_domain.get_select(db.catalog, run_id).build()
        frame = await db.fetch_frame(
            sql, params, jobs_domain.KINDS, post=_job_post(resolved, as_of_time(as_of))
        )
        if frame.empty:
            raise RecordNotFoundError("job", run_id)
        row = frames.first_row(frame)
        job = jobs_domain.job_from_row(row)
        return JobQA(
            run_id=job.run_id,
            grade=row["grade"],
            summary=row["summary"],
            ms_path=job.ms_path,
            cal_table=job.cal_table,
            flags=_split(row["reasons"]),
            not_assessed=_split(row["not_assessed"]),
            checks=_checks(row, resolved.checks("job")),
            queue_status=job.status,
            pipeline_config=parse_json(row["params"]) if job.params is None else job.params,
            metrics=_metrics(row, _JOB_METRICS),
            timestamp=job.finished_at or job.started_at or job.created_at,
            **(
                await notes_read.sign_off_of(self._connections, "job", job.run_id, row["grade"])
                if job.run_id is not None
                else {"final_grade": row["grade"]}
            ),
        )

    # ----------------------------------------------------------------------------------- reports
    async def report(
        self,
        *,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        rules: RulesLike = None,
        as_of: TimeLike | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> QAReport:
        """A QA report for a time range (default: the last night with data, ``client.last_night()``; pass
        ``since`` for everything from then on): final grades (a sign-off where there is one,
        else the computed grade) in totals and per night, the worst images, the failing checks, the
        calibration flagged-fraction trend, stuck MS, failed jobs with the first error of their logs, and
        the sign-offs and comments on the range's images, MS and jobs. ``progress(step, done, total)`` is called as each part is read."""
        if progress is not None and not callable(progress):
            raise ValidationError(
                f"progress must be a function (step, done, total) or None, got {progress!r}"
            )
        resolved = QARules.resolve(rules)
        check_time_range(since, until)
        if since is None and until is None:
            # With nothing on the site there is no last night: the report says there is nothing to grade
            with contextlib.suppress(RecordNotFoundError):
                night = await last_night(self._connections)
                since, until = night.start, night.end
        now = as_of_time(as_of)
        steps = ("images", "measurement sets", "jobs", "job logs")

        def tick(done: int) -> None:
            if progress is not None:
                progress(steps[min(done, len(steps) - 1)], done, len(steps))

        tick(0)
        images = await self.images(since=since, until=until, rules=resolved)
        tick(1)
        ms = await self.ms_list(since=since, until=until, rules=resolved, as_of=now)
        tick(2)
        jobs = await self.jobs(since=since, until=until, rules=resolved, as_of=now)
        tick(3)
        failed = jobs[jobs["status"].eq("failed").fillna(False)].head(MAX_FAILED_JOBS_WITH_LOGS)
        errors = await asyncio.gather(*(self._first_error(str(r)) for r in failed["run_id"].dropna()))
        comments = await notes_read.comments_on(
            self._connections,
            {
                join.kind: frame[join.key_column].dropna().astype("str")
                for join, frame in ((_IMAGE_NOTES, images), (_MS_NOTES, ms), (_JOB_NOTES, jobs))
            },
        )
        tick(4)
        # Building the report tables is pandas work over the whole range: off the event loop.
        db = await self._connections.products()
        return await db.compute(
            functools.partial(
                QAReport.build,
                images=images,
                ms=ms,
                jobs=jobs,
                first_errors=dict(zip(failed["run_id"].dropna().astype(str), errors, strict=True)),
                comments=comments,
                since=since,
                until=until,
                rules=resolved,
                as_of=now,
            )
        )

    async def _first_error(self, run_id: str) -> str | None:
        try:
            return (await self._logs.summary(run_id)).first_error
        except ToolkitError as exc:  # a missing or unreadable log must not sink the report
            return f"(log not readable: {exc})"
