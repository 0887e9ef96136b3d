"""Long unpaged listings read as two halves at once (images, MS): the split is chosen here, the reads run in
the backend.

Why: a full ``images.list()`` of 10k rows spends ~40 ms inside SQLite (the MS join and the run-id subquery
per row). Two connections reading the newer and the older half in parallel finish in ~70% of that. The split
costs one index-only query (~0.5 ms) and is skipped for short or paged listings, where it cannot pay.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ..db.base import Backend, PostProcess
from ..schema import Kind
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
