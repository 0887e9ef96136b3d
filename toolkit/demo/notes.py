"""A few annotations on the demo site, as a team would leave them: a sign-off with a reason, tags,
comments and labels on the variable and transient sources. Written through the notes store's own
transaction (``write_events``), so the demo's notes database is exactly what the toolkit writes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from ..notes.model import NoteEvent, make_event
from ..notes.sqlite_store import open_for_writing, write_events


def demo_events(
    images: dict[str, Any], ms_paths: list[str], variable: tuple[str, ...], transient: str, now: datetime,
    rng: np.random.Generator,
) -> list[NoteEvent]:  # fmt: skip
    """The demo's events, oldest first (their ids drawn from ``rng``, so a seed gives the same file)."""
    order = np.argsort(np.asarray(images["created_at"], dtype=float))[::-1]
    newest = [images["path"][i] for i in order if images["type"][i] == "image"]
    events: list[NoteEvent] = []

    def add(action: str, kind: str, key: str, author: str, hours_ago: float, **values: Any) -> None:
        events.append(
            make_event(
                action, kind, key, author=author, ordinal=0,
                created_at=(now - timedelta(hours=hours_ago)).astimezone(UTC),
                event_id=uuid.UUID(bytes=rng.bytes(16), version=4).hex, **values,
            )
        )  # fmt: skip

    add(
        "comment",
        "image",
        newest[0],
        "alice",
        5.0,
        text="Sidelobes from a bright source at the edge; science OK.",
    )
    add("sign_off", "image", newest[1], "alice", 4.5, grade="warn",
        text="noise high because of an RFI storm; accepted")  # fmt: skip
    for key in newest[2:5]:
        add("tag", "image", key, "bob", 4.0, tag="rfi")
    add("untag", "image", newest[4], "bob", 3.5, tag="rfi")
    add("sign_off", "image", newest[5], "bob", 3.0, grade="good", text="checked by eye")
    add("comment", "ms", ms_paths[-1], "bob", 2.5, text="Flagging looks heavy in the upper subbands.")
    add("tag", "ms", ms_paths[-1], "bob", 2.5, tag="check-flags")
    add(
        "classify",
        "source",
        transient,
        "alice",
        2.0,
        label="transient",
        text="two-epoch candidate; rises in one night",
    )
    for name in variable[:2]:
        add("classify", "source", name, "alice", 1.5, label="variable")
    add("comment", "source", transient, "bob", 1.0, text="Not in NVSS; follow up.")
    return events


def write_notes(path: Path, events: list[NoteEvent]) -> None:
    """A fresh notes database at ``path`` holding ``events``."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    conn = open_for_writing(path, busy_timeout=5.0)
    try:
        write_events(conn, events)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
