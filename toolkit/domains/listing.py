"""Long unpaged listings read as two halves at once (images, MS): the split is chosen here, the reads run in
the backend.

Why: a full ``images.list()`` of 10k rows spends ~40 ms inside SQLite (the MS join and the run-id subquery
per row). Two connections reading the newer and the older half in parallel finish in ~70% of that. The split
costs one index-only query (~0.5 ms) and is skipped for short or paged listings, where it cannot pay.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pandas as pd

from .. import export
from ..arguments import check_count
from ..db.base import Backend, PostProcess
from ..db.connections import Connections
from ..notes import read as notes_read
from ..schema import Kind
from .paging import MAX_PAGE_SIZE, Cursor, Listing, Page
from .query import Select

# Below this many rows the split query costs more than the parallel read saves.
SPLIT_MIN_ROWS = 4096


async def fetch_listing(
    db: Backend,
    q: Select,
    *,
    key: str,
    count_source: str,
    kinds: Mapping[str, Kind],
    post: PostProcess | None = None,
) -> pd.DataFrame:
    """``q``'s rows as a frame; ``key`` is its leading ``DESC`` order column, indexed in ``count_source``."""
    if q.limit is None and not q.offset:
        sql, params = q.split_point(key, count_source)
        ((count, middle),) = await db.fetch_rows(sql, params)
        if count >= SPLIT_MIN_ROWS and middle is not None:
            return await db.fetch_frame_parts(q.split_at(key, middle), kinds, post)
    sql, params = q.build()
    return await db.fetch_frame(sql, params, kinds, post)


async def export_listing(
    connections: Connections,
    listing: Listing,
    what: str,
    page: Callable[..., Awaitable[Page]],
    path: str | os.PathLike[str],
    *,
    format: str | None,
    batch_rows: int,
    overwrite: bool,
    progress: bool,
    filters: Mapping[str, Any],
) -> export.ExportResult:
    """An area's ``export``: its ``page`` read ``batch_rows`` rows at a time into a file, with the manifest
    naming the ``list()`` query those filters give (the pages walk the same rows in the same order)."""
    target, kind = export.check_target(path, format, overwrite)
    size = check_count(batch_rows, "batch_rows", low=1, high=MAX_PAGE_SIZE)
    wanted = await notes_read.resolve(connections, listing.filters.of(filters))  # unknown names: refused here
    db = await connections.products()
    sql, params = listing.list_select(db.catalog, wanted).build()

    async def read(after: Cursor | None, count: bool) -> Page:
        # The filters resolved once: every page keeps the targets the tag or label had at the start.
        return await page(wanted, after=after, size=size, count=count)

    return await export.write_listing(
        read, target, kind, progress=progress,
        manifest={"what": what, "query": sql, "params": params, "data_version": await db.data_version(),
                  "filters": dict(filters)},
    )  # fmt: skip
