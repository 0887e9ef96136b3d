"""Which events a read wants, as SQL for either backend (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from .model import iso
from .schema import COLUMNS

# A read returns at most this many events; beyond, narrow it (by kind, target or since).
MAX_EVENTS = 2_000_000


@dataclass(frozen=True)
class EventQuery:
    """Events of one target kind, of some targets, of some actions, by one author, since a time; with
    ``touched_after``, every event of the targets that have an event after that ``seq`` (what a cached
    summary must recompute)."""

    target_kind: str | None = None
    targets: tuple[str, ...] | None = None
    actions: tuple[str, ...] | None = None
    author: str | None = None
    since: datetime | None = None
    touched_after: int | None = None

    def sql(self, dialect: Literal["sqlite", "postgresql"]) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []

        def mark() -> str:
            return "?" if dialect == "sqlite" else f"${len(params)}"

        if self.target_kind is not None:
            params.append(self.target_kind)
            where.append(f"target_kind = {mark()}")
        if self.targets is not None:
            if dialect == "sqlite":
                params.append(json.dumps(list(self.targets)))
                where.append("target IN (SELECT value FROM json_each(?))")
            else:
                params.append(list(self.targets))
                where.append(f"target = ANY({mark()}::text[])")
        if self.actions is not None:
            if dialect == "sqlite":
                params.extend(self.actions)
                where.append(f"action IN ({', '.join('?' for _ in self.actions)})")
            else:
                params.append(list(self.actions))
                where.append(f"action = ANY({mark()}::text[])")
        if self.author is not None:
            params.append(self.author)
            where.append(f"author = {mark()}")
        if self.since is not None:
            params.append(iso(self.since) if dialect == "sqlite" else self.since)
            where.append(f"created_at >= {mark()}")
        if self.touched_after is not None:
            params.append(self.touched_after)
            after = mark()
            kind = ""
            if self.target_kind is not None:
                params.append(self.target_kind)
                kind = f" AND target_kind = {mark()}"
            # The (target_kind, target) index finds each touched target's events; seq > ? reads only the new tail
            where.append(f"target IN (SELECT target FROM events WHERE seq > {after}{kind})")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return f"SELECT {COLUMNS} FROM events{clause} ORDER BY created_at, ordinal, event_id", params
