"""``client.queue``: the streaming converter's ingest queue (``ingest_queue`` and ``subband_files``)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from .. import frames
from ..arguments import (
    TimeLike,
    as_of_time,
    check_choices,
    check_limit,
    check_text,
    check_time_range,
    to_duration,
)
from ..cache import cached
from ..db.connections import Connections
from ..errors import RecordNotFoundError, ValidationError
from ..records import QueueGroup, QueueStats
from ..schema import Kind
from .query import Select

QUEUE_STATES = ("collecting", "pending", "in_progress", "completed", "failed")
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
_COLUMNS = [
    "q.group_id AS group_id",
    "q.state AS state",
    "q.received_at AS received_at",
    "q.last_update AS last_update",
    "q.expected_subbands AS expected_subbands",
    "q.retry_count AS retry_count",
    "q.error AS error",
    "q.checkpoint_path AS checkpoint_path",
    "q.processing_stage AS processing_stage",
    "q.chunk_minutes AS chunk_minutes",
    "(SELECT COUNT(DISTINCT f.subband_idx) FROM subband_files AS f WHERE f.group_id = q.group_id) AS n_subbands",
]


def _select() -> Select:
    q = Select(
        [
            *_COLUMNS,
            "q.expected_subbands - (SELECT COUNT(DISTINCT f.subband_idx) FROM subband_files AS f "
            "WHERE f.group_id = q.group_id) AS missing_subbands",
        ],
        "ingest_queue AS q",
    )
    q.order_by = "q.received_at DESC, q.group_id DESC"
    return q


class Queue:
    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    async def _check_states(self, state: str | list[str] | None) -> list[str] | None:
        wanted = check_choices(state, "state")
        if wanted is None or set(wanted) <= set(QUEUE_STATES):
            return wanted
        db = await self._connections.queue()
        present = {r[0] for r in await db.fetch_rows("SELECT DISTINCT state FROM ingest_queue")}
        unknown = sorted(set(wanted) - set(QUEUE_STATES) - present)
        if unknown:
            valid = sorted(set(QUEUE_STATES) | {str(p) for p in present if p is not None})
            raise ValidationError(f"unknown queue state(s) {unknown}; valid states: {', '.join(valid)}")
        return wanted

    @cached("queue:list")
    async def list(
        self,
        *,
        state: str | list[str] | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> pd.DataFrame:
        """Queue groups, newest first, with how many subband files arrived (``n_subbands``) and how many are
        missing. ``since``/``until`` bound ``received_at``."""
        states = await self._check_states(state)
        limit, offset = check_limit(limit, offset)
        start, end = check_time_range(since, until)
        db = await self._connections.queue()
        q = _select()
        q.filter_in("q.state", states)
        q.filter_range("q.received_at", start, end)
        q.limit, q.offset = limit, offset
        sql, params = q.build()
        return await db.fetch_frame(sql, params, KINDS)

    async def get(self, group_id: str) -> QueueGroup:
        """One group with its subband files and the subbands still missing."""
        db = await self._connections.queue()
        q = _select()
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
        group: QueueGroup = QueueGroup.from_row(
            row, subbands=present, files=tuple(str(p) for p in files["path"]), missing=missing
        )
        return group

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
        q = _select()
        q.filter("q.state NOT IN ('completed', 'failed')")
        q.filter("q.last_update < ?", cutoff)
        q.order_by = "q.last_update, q.group_id"
        sql, params = q.build()
        now = as_of_time(as_of)

        def idle(frame: pd.DataFrame) -> pd.DataFrame:
            frame["idle"] = now - frame["last_update"]
            return frame

        return await db.fetch_frame(sql, params, KINDS, post=idle)
