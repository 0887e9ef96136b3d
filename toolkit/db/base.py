"""The seam between the domains (which build SQL) and a database (which runs it).

A backend runs each query with one crossing to its worker thread, bounds it by the query timeout, and
translates driver errors into :mod:`toolkit.errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from ..schema import Kind

Params = Sequence[Any]
# Work on a fetched frame that belongs off the event loop (derived columns); runs in the backend's worker.
PostProcess = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class Catalog:
    """Which tables and columns a database has (read once when the backend opens)."""

    tables: Mapping[str, frozenset[str]]

    def has_table(self, table: str) -> bool:
        return table in self.tables

    def columns(self, table: str) -> frozenset[str]:
        return self.tables.get(table, frozenset())


class Backend(Protocol):
    label: str
    catalog: Catalog

    async def fetch_rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Small queries: the rows as tuples, in one crossing."""
        ...

    async def fetch_frame(
        self, sql: str, params: Params, kinds: Mapping[str, Kind], post: PostProcess | None = None
    ) -> pd.DataFrame:
        """Bulk queries: a shaped DataFrame (Arrow where possible), shaped off the event loop."""
        ...

    async def fetch_frame_parts(
        self, parts: Sequence[tuple[str, Params]], kinds: Mapping[str, Kind], post: PostProcess | None = None
    ) -> pd.DataFrame:
        """Several queries read at once, concatenated in order: one frame, as if from one query."""
        ...

    async def fetch_user_frame(self, sql: str, params: Params) -> pd.DataFrame:
        """User SQL: any read-only statement, interruptible at the timeout."""
        ...

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """SQL and params for ``column IN values`` that work for any number of values."""
        ...

    async def aclose(self) -> None: ...
