"""Images: the ``images`` table with each image's QA grade (from its MS stage) and run id."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import frames, runids
from ..arguments import TimeLike, check_choices, check_limit, check_text, check_time_range
from ..cache import cached
from ..db.base import Catalog
from ..db.connections import Connections
from ..errors import RecordNotFoundError, ValidationError
from ..records import Image
from ..schema import Kind, kinds
from .filters import explain_empty
from .listing import fetch_listing
from .query import Select, select_columns, stage_grade

KINDS: dict[str, Kind] = {**kinds("images"), "qa_grade": "text", "run_id": "text"}


def latest_run_id_sql(catalog: Catalog, ms_path_column: str) -> str:
    """The run id of the newest job of an MS, or NULL where jobs carry none.

    "Newest" is the highest id (jobs are inserted as they are created): an index on ``jobs(ms_path)`` holds
    ids in order, so this needs no sort per row, where ``ORDER BY created_at`` built one for every image.
    """
    if "run_id" not in catalog.columns("jobs"):
        return "NULL"
    return (
        f"(SELECT j.run_id FROM jobs AS j WHERE j.ms_path = {ms_path_column} AND j.run_id IS NOT NULL "
        "ORDER BY j.id DESC LIMIT 1)"
    )


def fill_run_ids(frame: pd.DataFrame, ms_path_column: str = "ms_path") -> pd.DataFrame:
    """Where the jobs table gave no run id, derive the pipeline's one from the MS name."""
    missing = frame["run_id"].isna() & frame[ms_path_column].notna()
    if missing.any():
        frame.loc[missing, "run_id"] = runids.run_ids_for_ms(frame.loc[missing, ms_path_column])
    return frame


def image_select(catalog: Catalog) -> list[str]:
    return [
        *select_columns(catalog, "images", "i"),
        f"{stage_grade('m.stage')} AS qa_grade",
        f"{latest_run_id_sql(catalog, 'i.ms_path')} AS run_id",
    ]


def list_select(
    catalog: Catalog,
    *,
    type: str | list[str] | None = None,
    ms_path: str | None = None,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> Select:
    limit, offset = check_limit(limit, offset)
    start, end = check_time_range(since, until)
    q = Select(image_select(catalog), "images AS i LEFT JOIN ms_index AS m ON m.path = i.ms_path")
    q.filter_in("i.type", check_choices(type, "type"))
    if ms_path is not None:
        q.filter("i.ms_path = ?", check_text(ms_path, "ms_path"))
    q.filter_range("i.created_at", start, end, catalog.time_placeholder("images", "created_at"))
    q.order_by = "i.created_at DESC, i.id DESC"
    q.limit, q.offset = limit, offset
    return q


def filter_one_image(q: Select, id_or_path: int | str) -> Select:
    """Narrow ``q`` (images aliased ``i``) to one image, named by integer id or path."""
    if isinstance(id_or_path, bool) or not isinstance(id_or_path, int | str):
        raise ValidationError(f"an image is named by its integer id or its path, not {id_or_path!r}")
    if isinstance(id_or_path, int):
        return q.filter("i.id = ?", id_or_path)
    return q.filter("i.path = ?", check_text(id_or_path, "path"))


def get_query(catalog: Catalog, id_or_path: int | str) -> tuple[str, list[Any]]:
    q = Select(image_select(catalog), "images AS i LEFT JOIN ms_index AS m ON m.path = i.ms_path")
    return filter_one_image(q, id_or_path).build()


def image_from_row(row: dict[str, Any]) -> Image:
    image: Image = Image.from_row(row)
    return image


class Images:
    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    @cached("images:list")
    async def list(
        self,
        *,
        type: str | list[str] | None = None,
        ms_path: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> pd.DataFrame:
        """Images, newest first, with every ``images`` column plus ``qa_grade`` and ``run_id``.

        ``since``/``until`` bound ``created_at``; ``type`` takes one type or a list.
        """
        db = await self._connections.products()
        q = list_select(
            db.catalog, type=type, ms_path=ms_path, since=since, until=until, limit=limit, offset=offset
        )
        frame = await fetch_listing(
            db, q, key="i.created_at", count_source="images AS i", kinds=KINDS, post=fill_run_ids
        )
        if frame.empty and type is not None:
            await explain_empty(db, "images", "type", check_choices(type, "type") or [])
        return frame

    async def get(self, id_or_path: int | str) -> Image:
        """One image by id or path; ``RecordNotFoundError`` when there is none."""
        db = await self._connections.products()
        sql, params = get_query(db.catalog, id_or_path)
        frame = await db.fetch_frame(sql, params, KINDS, post=fill_run_ids)
        if frame.empty:
            raise RecordNotFoundError("image", id_or_path)
        return image_from_row(frames.first_row(frame))
