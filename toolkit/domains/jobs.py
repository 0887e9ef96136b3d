"""Jobs: the pipeline's processing runs, from ``jobs`` or, on databases without it, derived from ``ms_index``."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .. import frames, runids
from ..arguments import TimeLike, check_choices, check_text, check_time_range, digits_as_id
from ..cache import cached
from ..db.base import Catalog
from ..db.connections import Connections
from ..errors import RecordNotFoundError, ValidationError
from ..export import ExportResult
from ..notes import read as notes_read
from ..notes.read import NotesJoin
from ..records import Job, parse_json
from ..runids import fill_run_ids
from ..schema import Kind, kinds
from ..vocab import JOB_STATUS_OF_MS_STATUS, JOB_STATUSES
from .cal import tables_for_ms
from .filters import Filters, Vocabulary
from .listing import export_listing
from .paging import MAX_PAGE_SIZE, Cursor, Keyset, Listing, Page
from .query import Select, column_or_null, select_columns

KINDS: dict[str, Kind] = {**kinds("jobs"), "derived": "bool", "output_image": "text"}

_DERIVED_STATUS = (
    "CASE m.status "
    + " ".join(f"WHEN '{ms}' THEN '{job}'" for ms, job in JOB_STATUS_OF_MS_STATUS.items())
    + " ELSE 'pending' END"
)


def _derived_source(catalog: Catalog) -> str:
    created = column_or_null(catalog, "ms_index", "m", "created_at")
    return (
        "(SELECT m.rowid AS id, m.stage AS type, "
        f"{_DERIVED_STATUS} AS status, m.path AS ms_path, NULL AS run_id, NULL AS params, NULL AS logs, "
        f"NULL AS artifacts, COALESCE({created}, m.processed_at) AS created_at, m.processed_at AS started_at, "
        "CASE WHEN m.status IN ('completed', 'failed') THEN m.stage_updated_at END AS finished_at "
        "FROM ms_index AS m)"
    )


def job_source(catalog: Catalog) -> str:
    """The FROM clause for jobs (alias ``j``): the jobs table, or one derived job per MS without it."""
    return "jobs AS j" if catalog.has_table("jobs") else f"{_derived_source(catalog)} AS j"


def select(catalog: Catalog) -> Select:
    """Every ``jobs`` column plus ``derived`` and ``output_image``, jobs aliased ``j``."""
    output_image = "(SELECT i.path FROM images AS i WHERE i.ms_path = j.ms_path ORDER BY i.id LIMIT 1)"
    extra = [f"{output_image} AS output_image"]
    if catalog.has_table("jobs"):
        return Select([*select_columns(catalog, "jobs", "j"), "0 AS derived", *extra], job_source(catalog))
    return Select([*(f"j.{n} AS {n}" for n in kinds("jobs")), "1 AS derived", *extra], job_source(catalog))


@dataclass(frozen=True)
class JobFilters(Filters):
    """What ``jobs.list``/``jobs.page`` (and ``qa.jobs``) keep.

    ``status``: one value or a list; ``since``/``until`` bound ``created_at``; ``search``: the MS path
    contains this text.
    """

    status: str | list[str] | None = None
    since: TimeLike | None = None
    until: TimeLike | None = None
    search: str | None = None

    # Without a jobs table (statuses derived from the MS) there is no column to look values up in.
    vocabularies = (Vocabulary("status", "jobs", "status", JOB_STATUSES),)

    def apply(self, q: Select, catalog: Catalog) -> Select:
        start, end = check_time_range(self.since, self.until)
        q.filter_in("j.status", check_choices(self.status, "status"))
        q.filter_range("j.created_at", start, end, catalog.time_placeholder("jobs", "created_at"))
        return q.filter_contains("j.ms_path", self.search)


def add_job_columns(frame: pd.DataFrame) -> pd.DataFrame:
    frame = fill_run_ids(frame)
    frame["duration_s"] = (frame["finished_at"] - frame["started_at"]).dt.total_seconds()
    return frame


LISTING = Listing(
    Keyset(
        key="j.id",
        key_column="id",
        table="jobs",
        sorts={"created_at": "j.created_at", "id": "j.id", "status": "j.status"},
    ),
    JobFilters,
    select,
    KINDS,
    add_job_columns,
    order_by="j.created_at DESC, j.id DESC",
)


def get_select(catalog: Catalog, run_id_or_id: int | str) -> Select:
    q = select(catalog)
    if isinstance(run_id_or_id, bool) or not isinstance(run_id_or_id, int | str):
        raise ValidationError(f"a job is named by its run id or integer id, not {run_id_or_id!r}")
    run_id_or_id = digits_as_id(run_id_or_id)  # "42" is the job 42
    if isinstance(run_id_or_id, int):
        q.filter("j.id = ?", run_id_or_id)
    else:
        run_id = check_text(run_id_or_id, "run_id")
        ms_name = runids.ms_name_for_run_id(run_id)
        has_run_id_column = "run_id" in catalog.columns("jobs")
        clauses, params = [], []
        if has_run_id_column:
            clauses.append("j.run_id = ?")
            params.append(run_id)
        if ms_name is not None:
            # The derived form names the MS; rows without a stored run id are found through it.
            guard = "j.run_id IS NULL AND " if has_run_id_column else ""
            clauses.append(f"{guard}j.ms_path LIKE ?")
            params.append("%/" + ms_name)
        if not clauses:
            raise RecordNotFoundError(
                "job", run_id, "not a stored run id and not of the form job-YYYY-MM-DD-HHMMSS"
            )
        q.filter(" OR ".join(clauses), *params)
    q.order_by = "j.created_at DESC, j.id DESC"
    q.limit = 1
    return q


# What a job's panel shows beside the job: its output image's id and its MS's phase centre and mid time.
AROUND_JOB = (
    "SELECT (SELECT i.id FROM images AS i WHERE i.path = ?), (SELECT m.ra_deg FROM ms_index AS m WHERE "
    "m.path = ?), (SELECT m.dec_deg FROM ms_index AS m WHERE m.path = ?), (SELECT m.mid_mjd FROM ms_index AS m "
    "WHERE m.path = ?)"
)


def job_from_row(row: dict[str, Any]) -> Job:
    params = parse_json(row["params"])
    artifacts = parse_json(row["artifacts"])
    cal_table = params.get("cal_table") if isinstance(params, dict) else None
    started, finished = row["started_at"], row["finished_at"]
    output = row["output_image"]
    if isinstance(artifacts, dict) and artifacts.get("images"):
        output = artifacts["images"][0]
    return Job(
        id=row["id"],
        run_id=row["run_id"],
        type=row["type"],
        status=row["status"],
        ms_path=row["ms_path"],
        params=params,
        artifacts=artifacts,
        cal_table=cal_table,
        output_image=output,
        created_at=row["created_at"],
        started_at=started,
        finished_at=finished,
        duration=finished - started if started is not None and finished is not None else None,
        derived=bool(row["derived"]),
        inline_log=row["logs"],
    )


NOTES = NotesJoin("job", "run_id")


class Jobs:
    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    async def list(
        self,
        *,
        status: str | list[str] | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        search: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> pd.DataFrame:
        """Jobs, newest first, with ``run_id`` (derived where not stored), ``duration_s``, ``output_image``,
        and from the notes ``tags`` and ``n_comments``.

        ``since``/``until`` bound ``created_at``; ``search`` keeps jobs whose MS path contains that text. On a
        database without a ``jobs`` table there is one job per MS (``derived`` is true), as the pipeline
        shows them.
        """
        filters = JobFilters(status=status, since=since, until=until, search=search)
        return await notes_read.annotated(self._connections, self._list(filters, limit, offset), NOTES)

    @cached("jobs:list")
    async def _list(self, filters: JobFilters, limit: int | None, offset: int) -> pd.DataFrame:
        db = await self._connections.products()
        sql, params = LISTING.list_select(db.catalog, filters, limit=limit, offset=offset).build()
        frame = await db.fetch_frame(sql, params, KINDS, post=add_job_columns)
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
        """Write the jobs :meth:`list` gives for ``filters`` (``status``, ``since``, ``until``, ``search``)
        to a Parquet or CSV file, in :meth:`list`'s order, read in keyset pages of ``batch_rows`` (1 to 1,000)
        with a progress bar. ``format`` and ``overwrite`` as in ``sources.export``; ``<file>.manifest.json``
        beside it records the query, the filters, the database's change counter, the toolkit's version and
        the time. Reading a Parquet export back with ``pd.read_parquet`` gives the frame :meth:`list`
        returns."""
        return await export_listing(
            self._connections, LISTING, "jobs", self.page, path,
            format=format, batch_rows=batch_rows, overwrite=overwrite, progress=progress, filters=filters,
        )  # fmt: skip

    async def page(
        self,
        filters: JobFilters | Mapping[str, Any] | None = None,
        *,
        sort: str = "created_at",
        descending: bool = True,
        after: Cursor | None = None,
        before: Cursor | None = None,
        number: int | None = None,
        last: bool = False,
        size: int = 50,
        count: bool = True,
    ) -> Page:
        """One page of jobs, newest first by default, with :meth:`list`'s filters (a ``JobFilters`` or a
        dict such as ``{"status": "failed"}``).

        Paging as in ``images.page``; ``sort`` is created_at, id or status.
        """
        wanted = await notes_read.resolve(self._connections, JobFilters.of(filters))
        db = await self._connections.products()
        found = await LISTING.page(
            db, wanted, sort=sort, descending=descending, after=after, before=before, number=number,
            last=last, size=size, count=count,
        )  # fmt: skip
        return await notes_read.annotate_page(self._connections, found, NOTES)

    async def get(self, run_id_or_id: int | str) -> Job:
        """One job by run id (stored or derived from its MS) or id (42 or "42"), with its MS's phase centre, the
        id of its output image and ``cal_table_match``, the registry's table for its MS (first in apply
        order, as ``ms.get`` lists them)."""
        db = await self._connections.products()
        sql, params = get_select(db.catalog, run_id_or_id).build()
        frame = await db.fetch_frame(sql, params, KINDS, post=add_job_columns)
        if frame.empty:
            raise RecordNotFoundError("job", run_id_or_id)
        job = job_from_row(frames.first_row(frame))
        rows = await db.fetch_rows(AROUND_JOB, [job.output_image, job.ms_path, job.ms_path, job.ms_path])
        image_id, phase_ra, phase_dec, mid_mjd = rows[0]
        tables = await tables_for_ms(self._connections, job.ms_path, mid_mjd)
        return dataclasses.replace(
            job,
            output_image_id=image_id,
            phase_ra_deg=phase_ra,
            phase_dec_deg=phase_dec,
            cal_table_match=tables[0] if tables else None,
        )
