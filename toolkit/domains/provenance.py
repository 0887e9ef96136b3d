"""``client.provenance(...)``: the chain of products around one image, MS or run id.

Each link is asked for once (MS with its applied cal tables, the tables solved from the MS, the job, the log,
the images with their photometry counts); the independent ones run concurrently. A missing link is recorded
in ``missing`` and shown as missing, never raised: a provenance view is most useful exactly when something
in the chain is absent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import frames, runids
from ..arguments import check_text
from ..db.connections import Connections
from ..errors import RecordNotFoundError, ToolkitError, ValidationError
from ..records import CalTable, Job, MeasurementSet, Record
from .cal import KINDS as CAL_KINDS
from .cal import caltable_from_row
from .images import Images, image_ident
from .jobs import Jobs
from .logs import Logs
from .ms import MeasurementSets
from .query import Select, select_columns


@dataclass(frozen=True)
class Provenance(Record):
    """What an object came from and what came of it."""

    target: str
    kind: str  # "image", "ms" or "run id"
    ms_path: str | None
    ms: MeasurementSet | None
    cal_tables_applied: tuple[CalTable, ...]
    cal_tables_solved_from_ms: tuple[CalTable, ...]
    job: Job | None
    log: str | None  # the log file's path, "inline" for a log kept in the jobs table, None when missing
    images: pd.DataFrame = field(compare=False)  # path, type, created_at, photometry_rows
    missing: tuple[str, ...] = ()

    def title(self) -> str:
        return f"Provenance of {self.kind} {self.target}"


async def _resolve(
    connections: Connections, jobs: Jobs, target: int | str
) -> tuple[str, str | None, Job | None]:
    """(kind, MS path, job when the target named one)."""
    if isinstance(target, bool) or not isinstance(target, int | str):
        raise ValidationError(
            f"provenance takes an image id, an image or MS path, or a run id, not {target!r}"
        )
    target = image_ident(target)  # "123" is the image 123, as in images.get
    db = await connections.products()
    if isinstance(target, int):
        rows = await db.fetch_rows("SELECT ms_path FROM images WHERE id = ?", [target])
        if not rows:
            raise RecordNotFoundError("image", target)
        return "image", rows[0][0], None
    text = check_text(target, "target")
    rows = await db.fetch_rows(
        "SELECT 'ms', path FROM ms_index WHERE path = ? UNION ALL SELECT 'image', ms_path FROM images WHERE path = ?",
        [text, text],
    )
    if rows:
        kind, ms_path = rows[0]
        return str(kind), ms_path, None
    try:
        job = await jobs.get(text)
    except RecordNotFoundError:
        raise RecordNotFoundError(
            "product", text, "not an image path, an MS path or a run id known to this site"
        ) from None
    return "run id", job.ms_path, job


async def provenance(
    connections: Connections,
    target: int | str,
    *,
    images: Images,
    ms_area: MeasurementSets,
    jobs: Jobs,
    logs: Logs,
) -> Provenance:
    kind, ms_path, job = await _resolve(connections, jobs, target)
    missing: list[str] = []

    async def ms_record() -> MeasurementSet | None:
        if ms_path is None:
            return None
        try:
            return await ms_area.get(ms_path)
        except RecordNotFoundError:
            missing.append(f"MS {ms_path} is not in ms_index")
            return None

    async def solved_from() -> tuple[CalTable, ...]:
        cal = await connections.calibration()
        if cal is None or ms_path is None or "source_ms_path" not in cal.catalog.columns("caltables"):
            return ()
        q = Select(select_columns(cal.catalog, "caltables", "c"), "caltables AS c")
        q.filter("c.source_ms_path = ?", ms_path)
        q.order_by = "c.set_name, c.order_index"
        sql, params = q.build()
        frame = await cal.fetch_frame(sql, params, CAL_KINDS)
        return tuple(caltable_from_row(row) for row in frames.rows_as_dicts(frame))

    async def the_job() -> Job | None:
        if job is not None:
            return job
        run_id = runids.run_id_for_ms(ms_path) if ms_path else None
        if run_id is None:
            return None
        try:
            return await jobs.get(run_id)
        except RecordNotFoundError:
            return None

    async def image_frame() -> pd.DataFrame:
        if ms_path is None:
            return pd.DataFrame(columns=["path", "type", "created_at", "photometry_rows"])
        listed = await images.list(ms_path=ms_path)
        db = await connections.products()
        clause, params = db.catalog.dialect.in_list("p.image_path", listed["path"].tolist())
        counts = dict(
            await db.fetch_rows(
                f"SELECT p.image_path, COUNT(*) FROM photometry AS p WHERE {clause} GROUP BY p.image_path",
                params,
            )
        )
        frame = listed[["path", "type", "created_at"]].copy()
        frame["photometry_rows"] = frame["path"].map(lambda p: counts.get(p, 0)).astype("int64")
        return frame

    ms, solved, found_job, image_rows = await asyncio.gather(
        ms_record(), solved_from(), the_job(), image_frame()
    )
    if ms_path is None:
        missing.append("no MS: this image has no ms_path (a mosaic combines many)")
    if found_job is None:
        missing.append("no job found for this MS")
    log: str | None = None
    if found_job is not None and found_job.run_id:
        try:
            located = await logs.find(found_job.run_id)
            log = str(located) if isinstance(located, Path) else "inline"
        except ToolkitError:
            missing.append(f"no log for {found_job.run_id}")
    applied = ms.cal_tables if ms is not None else ()
    if ms is not None and not applied:
        missing.append("no calibration tables cover this MS")
    if ms_path is not None and image_rows.empty:
        missing.append("no images made from this MS")
    return Provenance(
        target=str(target),
        kind=kind,
        ms_path=ms_path,
        ms=ms,
        cal_tables_applied=applied,
        cal_tables_solved_from_ms=solved,
        job=found_job,
        log=log,
        images=image_rows.reset_index(drop=True),
        missing=tuple(missing),
    )
