"""Measurement sets: ``ms_index`` with QA grade, run id, images and the calibration tables applied."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import frames
from ..arguments import (
    MJD_UNIX_EPOCH,
    SECONDS_PER_DAY,
    TimeLike,
    check_choices,
    check_limit,
    check_text,
    check_time_range,
)
from ..cache import cached
from ..db.base import Catalog
from ..db.connections import Connections
from ..errors import RecordNotFoundError
from ..records import CalTable, MeasurementSet
from ..schema import MS_STAGES, Kind, kinds
from .cal import applied_tables
from .filters import explain_empty
from .images import fill_run_ids, latest_run_id_sql
from .listing import fetch_listing
from .query import Select, select_columns, stage_grade

KINDS: dict[str, Kind] = {**kinds("ms_index"), "qa_grade": "text", "run_id": "text", "image_path": "text"}
MS_STATUSES = ("pending", "in_progress", "completed", "failed")


def fill_ms_run_ids(frame: pd.DataFrame) -> pd.DataFrame:
    return fill_run_ids(frame, "path")


def ms_select(catalog: Catalog) -> list[str]:
    return [
        *select_columns(catalog, "ms_index", "m"),
        f"{stage_grade('m.stage')} AS qa_grade",
        f"{latest_run_id_sql(catalog, 'm.path')} AS run_id",
    ]


def _unix_to_mjd(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / SECONDS_PER_DAY + MJD_UNIX_EPOCH


def list_select(
    catalog: Catalog,
    *,
    stage: str | list[str] | None = None,
    status: str | list[str] | None = None,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> Select:
    limit, offset = check_limit(limit, offset)
    start, end = check_time_range(since, until)
    q = Select(ms_select(catalog), "ms_index AS m")
    q.filter_in("m.stage", check_choices(stage, "stage"))
    q.filter_in("m.status", check_choices(status, "status"))
    # since/until bound the observation (mid_mjd): an MS still waiting to be processed has no processed_at.
    q.filter_range("m.mid_mjd", _unix_to_mjd(start), _unix_to_mjd(end))
    q.order_by = "m.mid_mjd DESC, m.path DESC"
    q.limit, q.offset = limit, offset
    return q


def get_query(catalog: Catalog, path: str) -> tuple[str, list[Any]]:
    q = Select(
        [*ms_select(catalog), "i.path AS image_path"],
        "ms_index AS m LEFT JOIN images AS i ON i.ms_path = m.path",
    )
    q.filter("m.path = ?", check_text(path, "path"))
    q.order_by = "i.id"
    return q.build()


def ms_from_frame(frame: pd.DataFrame, cal_tables: tuple[CalTable, ...]) -> MeasurementSet:
    row = frames.first_row(frame)
    # The pipeline prefers the pointing centre over the phase centre when both exist.
    ra = row["pointing_ra_deg"] if row["pointing_ra_deg"] is not None else row["ra_deg"]
    dec = row["pointing_dec_deg"] if row["pointing_dec_deg"] is not None else row["dec_deg"]
    images = tuple(frame["image_path"].dropna().tolist())
    ms: MeasurementSet = MeasurementSet.from_row(
        row,
        ra_deg=ra,
        dec_deg=dec,
        images=images,
        cal_tables=cal_tables,
        primary_cal_table=cal_tables[0] if cal_tables else None,
    )
    return ms


class MeasurementSets:
    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    @cached("ms:list")
    async def list(
        self,
        *,
        stage: str | list[str] | None = None,
        status: str | list[str] | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> pd.DataFrame:
        """Measurement sets, newest observation first, with ``qa_grade`` and ``run_id``.

        ``since``/``until`` bound the observation time (``mid_mjd``).
        """
        db = await self._connections.products()
        q = list_select(
            db.catalog, stage=stage, status=status, since=since, until=until, limit=limit, offset=offset
        )
        frame = await fetch_listing(
            db, q, key="m.mid_mjd", count_source="ms_index AS m", kinds=KINDS, post=fill_ms_run_ids
        )
        if frame.empty:
            for column, value, valid in (("stage", stage, MS_STAGES), ("status", status, MS_STATUSES)):
                if value is not None:
                    await explain_empty(db, "ms_index", column, check_choices(value, column) or [], valid)
        return frame

    async def get(self, path: str) -> MeasurementSet:
        """One MS with its pointing, images, run id, QA grade and the calibration tables applied to it."""
        db = await self._connections.products()
        sql, params = get_query(db.catalog, path)
        frame = await db.fetch_frame(sql, params, KINDS, post=fill_ms_run_ids)
        if frame.empty:
            raise RecordNotFoundError("measurement set", path)
        cal = await self._connections.calibration()
        mid_mjd = frames.plain(frame["mid_mjd"].iloc[0])
        tables = () if cal is None else await applied_tables(cal, path, mid_mjd)
        return ms_from_frame(frame, tables)
