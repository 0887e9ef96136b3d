"""``client.queue``: the streaming converter's ingest queue (``ingest_queue`` and ``subband_files``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pandas as pd

from .. import frames
from ..arguments import (
    TimeLike,
    as_of_time,
    check_choices,
    check_text,
    check_time_range,
    to_duration,
)
from ..cache import cached
from ..db.base import Catalog
from ..db.connections import Connections
from ..errors import RecordNotFoundError
from ..records import QueueGroup, QueueStats
from ..schema import Kind
from ..vocab import QUEUE_FINISHED, QUEUE_STATES
from .filters import Filters, Vocabulary
from .paging import Cursor, Keyset, Listing, Page
from .query import Select

KINDS: dict[str, Kind] = {
    "group_id": "text",
    "state": "text",
    "received_at": "time",
    "last_update": "time",
    "expected_subbands": "int",
    "retry_count": "int",
    "error": "text",
    "checkpoint_path": "text",
    "processing_stage": "text",
    "chunk_minutes": "real",
    "n_subbands": "int",
    "missing_subbands": "int",
}
_N_SUBBANDS = "(SELECT COUNT(DISTINCT f.subband_idx) FROM subband_files AS f WHERE f.group_id = q.group_id)"


def select(catalog: Catalog) -> Select:
    """Every queue column plus ``n_subbands`` (files arrived) and ``missing_subbands``, aliased ``q``."""
    columns = [
        *(f"q.{name} AS {name}" for name in KINDS if name not in ("n_subbands", "missing_subbands")),
        f"{_N_SUBBANDS} AS n_subbands",
        f"q.expected_subbands - {_N_SUBBANDS} AS missing_subbands",
    ]
    return Select(columns, "ingest_queue AS q")


@dataclass(frozen=True)
class QueueFilters(Filters):
    """What ``queue.list``/``queue.page`` keep: ``state`` (one or a list), ``since``/``until`` on
    ``received_at``, and ``search`` (the group id contains this text)."""

    state: str | list[str] | None = None
    since: TimeLike | None = None
    until: TimeLike | None = None
    search: str | None = None

    vocabularies = (Vocabulary("state", "ingest_queue", "state", QUEUE_STATES),)

    def apply(self, q: Select, catalog: Catalog) -> Select:
        start, end = check_time_range(self.since, self.until)
        q.filter_in("q.state", check_choices(self.state, "state"))
        q.filter_range("q.received_at", start, end)
        return q.filter_contains("q.group_id", self.search)


LISTING = Listing(
    Keyset(
        key="q.group_id",
        key_column="group_id",
        table="ingest_queue",
        sorts={"received_at": "q.received_at", "last_update": "q.last_update", "group_id": "q.group_id"},
    ),
    QueueFilters,
    select,
    KINDS,
    order_by="q.received_at DESC, q.group_id DESC",
)


class Queue:
    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    @cached("queue:list")
    async def list(
        self,
        *,
        state: str | list[str] | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        search: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> pd.DataFrame:
        """Queue groups, newest first, with how many subband files arrived (``n_subbands``) and how many are
        missing. ``since``/``until`` bound ``received_at``; ``search`` keeps group ids containing that text."""
        filters = QueueFilters(state=state, since=since, until=until, search=search)
        db = await self._connections.queue()
        sql, params = LISTING.list_select(db.catalog, filters, limit=limit, offset=offset).build()
        frame = await db.fetch_frame(sql, params, KINDS)
        if frame.empty:
            await filters.explain(db)
        return frame

    async def page(
        self,
        filters: QueueFilters | Mapping[str, Any] | None = None,
        *,
        sort: str = "received_at",
        descending: bool = True,
        after: Cursor | None = None,
        before: Cursor | None = None,
        number: int | None = None,
        last: bool = False,
        size: int = 50,
        count: bool = True,
    ) -> Page:
        """One page of queue groups, newest first by default, with :meth:`list`'s filters (a
        ``QueueFilters`` or a dict such as ``{"state": "pending"}``).

        Paging as in ``images.page``; ``sort`` is received_at, last_update or group_id.
        """
        db = await self._connections.queue()
        return await LISTING.page(
            db, filters, sort=sort, descending=descending, after=after, before=before, number=number,
            last=last, size=size, count=count,
        )  # fmt: skip

    async def get(self, group_id: str) -> QueueGroup:
        """One group with its subband files and the subbands still missing."""
        db = await self._connections.queue()
        q = select(db.catalog)
        q.columns = [*q.columns, "f.subband_idx AS subband_idx", "f.path AS path"]
        q.source = "ingest_queue AS q LEFT JOIN subband_files AS f ON f.group_id = q.group_id"
        q.filter("q.group_id = ?", check_text(group_id, "group_id"))
        q.order_by = "f.subband_idx"
        sql, params = q.build()
        frame = await db.fetch_frame(sql, params, {**KINDS, "subband_idx": "int", "path": "text"})
        if frame.empty:
            raise RecordNotFoundError("queue group", group_id)
        row = frames.first_row(frame)
        files = frame.dropna(subset=["subband_idx"])
        present = tuple(int(i) for i in files["subband_idx"])
        expected = row["expected_subbands"]
        missing = tuple(sorted(set(range(expected)) - set(present))) if expected is not None else ()
        return QueueGroup.from_row(
            row, subbands=present, files=tuple(str(p) for p in files["path"]), missing=missing
        )

    @cached("queue:stats")
    async def stats(self, *, as_of: TimeLike | None = None) -> QueueStats:
        """Counts by state and by processing stage, the oldest pending group and its age, and retries."""
        db = await self._connections.queue()
        rows = await db.fetch_rows(
            "SELECT 'state', state, COUNT(*), SUM(retry_count) FROM ingest_queue GROUP BY state UNION ALL "
            "SELECT 'stage', processing_stage, COUNT(*), NULL FROM ingest_queue GROUP BY processing_stage "
            "UNION ALL SELECT 'oldest', group_id, received_at, NULL FROM "
            "(SELECT group_id, received_at FROM ingest_queue WHERE state = 'pending' ORDER BY received_at LIMIT 1) AS oldest"
        )
        by_state: dict[str, int] = {}
        by_stage: dict[str, int] = {}
        retries = 0
        oldest: tuple[str, float] | None = None
        for kind, key, n, extra in rows:
            if kind == "state":
                by_state[str(key)] = int(n)
                retries += int(extra or 0)
            elif kind == "stage":
                by_stage["none" if key is None else str(key)] = int(n)
            else:
                oldest = (str(key), float(n))
        now = as_of_time(as_of)
        age = None if oldest is None else timedelta(seconds=now.timestamp() - oldest[1])
        return QueueStats(
            total=sum(by_state.values()),
            by_state=by_state,
            by_stage=by_stage,
            oldest_pending=None if oldest is None else oldest[0],
            oldest_pending_age=age,
            retries=retries,
        )

    async def stuck(
        self, older_than: timedelta | float | str = "6h", *, as_of: TimeLike | None = None
    ) -> pd.DataFrame:
        """Groups still open (not completed or failed) whose last update is older than ``older_than``
        (a timedelta, a number of seconds, or text such as "6h" or "2d"), oldest update first, with ``idle``
        (a timedelta)."""
        age = to_duration(older_than, "older_than")
        cutoff = as_of_time(as_of).timestamp() - age.total_seconds()
        db = await self._connections.queue()
        q = select(db.catalog)
        q.filter_not_in("q.state", QUEUE_FINISHED)
        q.filter("q.last_update < ?", cutoff)
        q.order_by = "q.last_update, q.group_id"
        sql, params = q.build()
        now = as_of_time(as_of)

        def idle(frame: pd.DataFrame) -> pd.DataFrame:
            frame["idle"] = now - frame["last_update"]
            return frame

        return await db.fetch_frame(sql, params, KINDS, post=idle)
