"""The seam between ``client.notes`` and where the notes are kept (a SQLite file or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pandas as pd

from .model import NoteEvent
from .query import EventQuery


class NotesStore(Protocol):
    @property
    def location(self) -> str:
        """Where the notes are, for messages (a PostgreSQL URL without its password)."""
        ...

    async def append(self, events: Sequence[NoteEvent]) -> int:
        """Write ``events`` in one transaction, all or none; returns how many were new (by event id).
        Failures are ``NotesWriteError``."""
        ...

    async def read(self, query: EventQuery) -> pd.DataFrame | None:
        """The events ``query`` selects, oldest first; None when the database does not exist yet."""
        ...

    async def version(self) -> int | None:
        """The highest event ``seq`` (0 with no events): it grows with every write, the events being
        append-only. None when the database does not exist yet."""
        ...

    async def aclose(self) -> None: ...
