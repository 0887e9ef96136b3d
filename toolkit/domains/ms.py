"""Measurement sets: ``ms_index`` with QA grade, run id, images and the calibration tables applied."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .. import frames
from ..arguments import TimeLike, check_choices, check_text, check_time_range
from ..cache import cached
from ..db.base import Catalog
from ..db.connections import Connections
from ..errors import RecordNotFoundError
from ..export import ExportResult
from ..mjd import unix_to_mjd
from ..notes import read as notes_read
from ..notes.read import NotesJoin
from ..records import CalTable, MeasurementSet
from ..runids import fill_ms_run_ids
from ..schema import Kind, kinds
from ..vocab import MS_STAGES, MS_STATUSES, stage_grade_sql
from .cal import tables_for_ms
from .filters import Filters, Vocabulary
from .listing import export_listing, fetch_listing
from .paging import MAX_PAGE_SIZE, Cursor, Keyset, Listing, Page
from .query import Select, latest_run_id, select_columns

KINDS: dict[str, Kind] = {**kinds("ms_index"), "qa_grade": "text", "run_id": "text", "image_path": "text"}


@dataclass(frozen=True)
class MSFilters(Filters):
    """What ``ms.list``/``ms.page`` (and ``qa.ms_list``) keep.

    ``stage``/``status``: one value or a list; ``since``/``until`` bound the observation (``mid_mjd``: an
    MS still waiting to be processed has no ``processed_at``); ``search``: the path contains this text.
    """

    stage: str | list[str] | None = None
    status: str | list[str] | None = None
    since: TimeLike | None = None
    until: TimeLike | None = None
    search: str | None = None

    vocabularies = (
        Vocabulary("stage", "ms_index", "stage", MS_STAGES),
        Vocabulary("status", "ms_index", "status", MS_STATUSES),
    )

    def apply(self, q: Select, catalog: Catalog) -> Select:
        start, end = check_time_range(self.since, self.until)
        q.filter_in("m.stage", check_choices(self.stage, "stage"))
        q.filter_in("m.status", check_choices(self.status, "status"))
        q.filter_range("m.mid_mjd", unix_to_mjd(start), unix_to_mjd(end))
        return q.filter_contains("m.path", self.search)


def select(catalog: Catalog) -> Select:
    """Every ``ms_index`` column plus ``qa_grade`` and ``run_id``, MS aliased ``m``."""
    columns = [
        *select_columns(catalog, "ms_index", "m"),
        f"{stage_grade_sql('m.stage')} AS qa_grade",
        f"{latest_run_id(catalog, 'm.path')} AS run_id",
    ]
    return Select(columns, "ms_index AS m")


LISTING = Listing(
    Keyset(
        key="m.path",
        key_column="path",
        table="ms_index",
        sorts={"mid_mjd": "m.mid_mjd", "path": "m.path", "stage": "m.stage", "status": "m.status"},
    ),
    MSFilters,
    select,
    KINDS,
    fill_ms_run_ids,
    order_by="m.mid_mjd DESC, m.path DESC",
)


def get_select(catalog: Catalog, path: str) -> Select:
    """The MS with one row per image it made (``image_path``)."""
    q = select(catalog)
    q.columns = [*q.columns, "i.path AS image_path"]
    q.source = "ms_index AS m LEFT JOIN images AS i ON i.ms_path = m.path"
    q.filter("m.path = ?", check_text(path, "path"))
    q.order_by = "i.id"
    return q


def ms_from_frame(frame: pd.DataFrame, cal_tables: tuple[CalTable, ...]) -> MeasurementSet:
    row = frames.first_row(frame)
    # The pipeline prefers the pointing centre over the phase centre when both exist.
    ra = row["pointing_ra_deg"] if row["pointing_ra_deg"] is not None else row["ra_deg"]
    dec = row["pointing_dec_deg"] if row["pointing_dec_deg"] is not None else row["dec_deg"]
    images = tuple(frame["image_path"].dropna().tolist())
    return MeasurementSet.from_row(
        row,
        ra_deg=ra,
        dec_deg=dec,
        phase_ra_deg=row["ra_deg"],
        phase_dec_deg=row["dec_deg"],
        images=images,
        cal_tables=cal_tables,
        primary_cal_table=cal_tables[0] if cal_tables else None,
    )


NOTES = NotesJoin("ms", "path")


class MeasurementSets:
    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    async def list(
        self,
        *,
        stage: str | list[str] | None = None,
        status: str | list[str] | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        search: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> pd.DataFrame:
        """Measurement sets, newest observation first, with ``qa_grade``, ``run_id``, and from the notes
        ``tags`` and ``n_comments``.

        ``since``/``until`` bound the observation time (``mid_mjd``); ``search`` keeps paths containing
        that text.
        """
        filters = MSFilters(stage=stage, status=status, since=since, until=until, search=search)
        return await notes_read.annotated(self._connections, self._list(filters, limit, offset), NOTES)

    @cached("ms:list")
    async def _list(self, filters: MSFilters, limit: int | None, offset: int) -> pd.DataFrame:
        db = await self._connections.products()
        q = LISTING.list_select(db.catalog, filters, limit=limit, offset=offset)
        frame = await fetch_listing(
            db, q, key="m.mid_mjd", count_source="ms_index AS m", kinds=KINDS, post=fill_ms_run_ids
        )
        if frame.empty:
            await filters.explain(db)
        return frame

    async def export(
        self,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,
        batch_rows: int = MAX_PAGE_SIZE,
        overwrite: bool = False,
        progress: bool = True,
        **filters: Any,
    ) -> ExportResult:
        """Write the measurement sets :meth:`list` gives for ``filters`` (``stage``, ``status``, ``since``, ``until``, ``search``)
        to a Parquet or CSV file, in :meth:`list`'s order, read in keyset pages of ``batch_rows`` (1 to 1,000)
        with a progress bar. ``format`` and ``overwrite`` as in ``sources.export``; ``<file>.manifest.json``
        beside it records the query, the filters, the database's change counter, the toolkit's version and
        the time. Reading a Parquet export back with ``pd.read_parquet`` gives the frame :meth:`list`
        returns."""
        return await export_listing(
            self._connections, LISTING, "ms", self.page, path,
            format=format, batch_rows=batch_rows, overwrite=overwrite, progress=progress, filters=filters,
        )  # fmt: skip

    async def page(
        self,
        filters: MSFilters | Mapping[str, Any] | None = None,
        *,
        sort: str = "mid_mjd",
        descending: bool = True,
        after: Cursor | None = None,
        before: Cursor | None = None,
        number: int | None = None,
        last: bool = False,
        size: int = 50,
        count: bool = True,
    ) -> Page:
        """One page of measurement sets, newest observation first by default, with :meth:`list`'s filters
        (an ``MSFilters`` or a dict such as ``{"stage": "calibrated"}``).

        Paging as in ``images.page``; ``sort`` is mid_mjd, path, stage or status.
        """
        wanted = await notes_read.resolve(self._connections, MSFilters.of(filters))
        db = await self._connections.products()
        found = await LISTING.page(
            db, wanted, sort=sort, descending=descending, after=after, before=before, number=number,
            last=last, size=size, count=count,
        )  # fmt: skip
        return await notes_read.annotate_page(self._connections, found, NOTES)

    async def get(self, path: str) -> MeasurementSet:
        """One MS with its images, run id, QA grade and the calibration tables applied to it.

        ``ra_deg``/``dec_deg`` are the pointing centre where the MS has one, else the phase centre (the
        pipeline's preference); ``pointing_*`` and ``phase_*`` hold each as recorded."""
        db = await self._connections.products()
        sql, params = get_select(db.catalog, path).build()
        frame = await db.fetch_frame(sql, params, KINDS, post=fill_ms_run_ids)
        if frame.empty:
            raise RecordNotFoundError("measurement set", path)
        tables = await tables_for_ms(self._connections, path, frames.plain(frame["mid_mjd"].iloc[0]))
        return ms_from_frame(frame, tables)
