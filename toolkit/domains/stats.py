"""The pipeline's dashboard counts in two queries: one UNION of counts, one for the recent images."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..db.base import Catalog
from ..db.connections import Connections
from ..records import Stats
from ..runids import fill_run_ids
from . import images
from .jobs import job_source


def counts_query(catalog: Catalog) -> str:
    parts = [
        "SELECT 'ms_stage' AS k, stage AS key, COUNT(*) AS n FROM ms_index GROUP BY stage",
        "SELECT 'images', NULL, COUNT(*) FROM images",
        "SELECT 'photometry', NULL, COUNT(*) FROM photometry",
        "SELECT 'sources', NULL, COUNT(DISTINCT source_id) FROM photometry",
    ]
    parts.append(f"SELECT 'jobs_status', j.status, COUNT(*) FROM {job_source(catalog)} GROUP BY j.status")
    if catalog.has_table("caltables"):
        parts.append("SELECT 'caltables', NULL, COUNT(*) FROM caltables")
    return " UNION ALL ".join(parts)


def stats_from_counts(rows: list[tuple[Any, ...]], cal_tables_total: int | None) -> dict[str, Any]:
    by_stage: dict[str, int] = {}
    by_status: dict[str, int] = {}
    totals: dict[str, int] = {}
    for kind, key, n in rows:
        if kind == "ms_stage":
            # an MS the pipeline has not staged yet is waiting: the pipeline's API called it "pending"
            stage = "pending" if key is None else str(key)
            by_stage[stage] = by_stage.get(stage, 0) + int(n)
        elif kind == "jobs_status":
            by_status[str(key)] = int(n)
        else:
            totals[kind] = int(n)
    return {
        "ms_total": sum(by_stage.values()),
        "ms_by_stage": by_stage,
        "images_total": totals.get("images", 0),
        "photometry_rows": totals.get("photometry", 0),
        "unique_sources": totals.get("sources", 0),
        "jobs_by_status": by_status,
        "cal_tables_total": totals.get("caltables", 0) if cal_tables_total is None else cal_tables_total,
    }


async def stats(connections: Connections, recent: int = 10) -> Stats:
    generated_at = datetime.now(UTC)
    db = await connections.products()
    rows = await db.fetch_rows(counts_query(db.catalog))
    cal = await connections.calibration()
    cal_total = None
    if cal is not None and cal is not db:
        cal_total = int((await cal.fetch_rows("SELECT COUNT(*) FROM caltables"))[0][0])
    values = stats_from_counts(rows, cal_total)
    values["jobs_total"] = sum(values["jobs_by_status"].values())
    sql, params = images.LISTING.list_select(db.catalog, images.ImageFilters(), limit=recent).build()
    values["recent_images"] = await db.fetch_frame(sql, params, images.KINDS, post=fill_run_ids)
    return Stats(**values, generated_at=generated_at)
