"""Turning an empty answer to a filter on a value the database does not have into a clear error."""

from __future__ import annotations

from collections.abc import Iterable

from ..db.base import Backend
from ..errors import ValidationError


async def explain_empty(
    db: Backend, table: str, column: str, asked: list[str], always_valid: Iterable[str] = ()
) -> None:
    """An empty answer to a filter on an unknown value is a typo, not "nothing": say which values exist.

    ``always_valid`` are values the pipeline defines (an empty stage is a fine answer); only a value neither
    defined nor present in the table is refused. Called only when a filtered answer came back empty.
    """
    if column not in db.catalog.columns(table):
        return
    rows = await db.fetch_rows(f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL LIMIT 200")
    known = sorted({str(r[0]) for r in rows} | set(always_valid))
    unknown = [v for v in asked if v not in known]
    if unknown:
        raise ValidationError(
            f"unknown {column} {', '.join(map(repr, unknown))} for {table}; values in this database: "
            f"{', '.join(known) or 'none'}"
        )
