"""A small SQL builder shared by the domains (pure: text and parameters, no I/O).

It exists for two reasons: columns that an older database lacks are selected as ``NULL AS col`` so frames look
the same everywhere, and filters are always bound as parameters, never pasted into the SQL text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..arguments import check_text
from ..db.base import Catalog
from ..errors import ValidationError
from ..schema import column_names

# Longest text a ``search`` filter takes (SQLite refuses LIKE patterns past 50,000 bytes).
MAX_SEARCH = 1_000

# The images-to-MS join: an image's MS gives its stage (hence ``qa_grade``). Mosaics have no MS (LEFT JOIN).
IMAGES_WITH_MS = "images AS i LEFT JOIN ms_index AS m ON m.path = i.ms_path"


def latest_run_id(catalog: Catalog, ms_path_column: str) -> str:
    """The run id of the newest job of an MS, or NULL where jobs carry none.

    "Newest" is the highest id (jobs are inserted as they are created): an index on ``jobs(ms_path)`` holds
    ids in order, so this needs no sort per row, where ``ORDER BY created_at`` built one for every image.
    Frames fill the NULLs from the MS name afterwards (``runids.fill_run_ids``).
    """
    if "run_id" not in catalog.columns("jobs"):
        return "NULL"
    return (
        f"(SELECT j.run_id FROM jobs AS j WHERE j.ms_path = {ms_path_column} AND j.run_id IS NOT NULL "
        "ORDER BY j.id DESC LIMIT 1)"
    )


def select_columns(catalog: Catalog, table: str, alias: str, names: Iterable[str] | None = None) -> list[str]:
    """``alias.col AS col`` for each column the database has, ``NULL AS col`` for the rest."""
    present = catalog.columns(table)
    wanted = column_names(table) if names is None else tuple(names)
    return [f"{alias}.{name} AS {name}" if name in present else f"NULL AS {name}" for name in wanted]


def column_or_null(catalog: Catalog, table: str, alias: str, name: str) -> str:
    return f"{alias}.{name}" if name in catalog.columns(table) else "NULL"


@dataclass
class Select:
    """SELECT ... FROM ... WHERE ... ORDER BY ... LIMIT ... OFFSET, with bound parameters."""

    columns: Sequence[str]
    source: str
    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    group_by: str = ""
    having: list[str] = field(default_factory=list)
    having_params: list[Any] = field(default_factory=list)
    order_by: str = ""
    limit: int | None = None
    offset: int = 0

    def filter(self, clause: str, *params: Any) -> Select:
        self.where.append(clause)
        self.params.extend(params)
        return self

    def filter_in(self, column: str, values: Sequence[Any] | None) -> Select:
        if values is not None:
            marks = ", ".join("?" for _ in values)
            self.filter(f"{column} IN ({marks})", *values)
        return self

    def filter_not_in(self, column: str, values: Sequence[Any]) -> Select:
        marks = ", ".join("?" for _ in values)
        return self.filter(f"{column} NOT IN ({marks})", *values)

    def filter_contains(self, column: str, text: str | None, name: str = "search") -> Select:
        """Rows whose ``column`` contains ``text``, ignoring case, on every backend (LIKE's wildcards in
        ``text`` are matched literally)."""
        if text is not None:
            if isinstance(text, str) and len(text) > MAX_SEARCH:
                raise ValidationError(
                    f"{name} is {len(text):,} characters; at most {MAX_SEARCH:,} are searched for"
                )
            self.filter(f"LOWER({column}) LIKE LOWER(?) ESCAPE '\\'", like_pattern(check_text(text, name)))
        return self

    def filter_range(self, column: str, low: Any, high: Any, placeholder: str = "?") -> Select:
        if low is not None:
            self.filter(f"{column} >= {placeholder}", low)
        if high is not None:
            self.filter(f"{column} <= {placeholder}", high)
        return self

    def build(self) -> tuple[str, list[Any]]:
        parts = [f"SELECT {', '.join(self.columns)} FROM {self.source}"]
        if self.where:
            parts.append("WHERE " + " AND ".join(f"({w})" for w in self.where))
        if self.group_by:
            parts.append(f"GROUP BY {self.group_by}")
        if self.having:
            parts.append("HAVING " + " AND ".join(f"({h})" for h in self.having))
        if self.order_by:
            parts.append(f"ORDER BY {self.order_by}")
        params = [*self.params, *self.having_params]
        if self.limit is not None or self.offset:
            parts.append("LIMIT ? OFFSET ?")
            params += [-1 if self.limit is None else self.limit, self.offset]
        return " ".join(parts), params

    def split_point(self, key: str, count_source: str) -> tuple[str, list[Any]]:
        """SQL for (matching rows, the ``key`` value halfway down ``key DESC``), read from ``count_source``.

        ``count_source`` is the FROM clause without the joins that only add columns, so both numbers come from
        an index walk (~0.5 ms for 10k images) rather than the whole join.
        """
        where = f" WHERE {' AND '.join(f'({w})' for w in self.where)}" if self.where else ""
        count = f"SELECT count(*) FROM {count_source}{where}"
        middle = f"SELECT {key} FROM {count_source}{where} ORDER BY {key} DESC LIMIT 1 OFFSET ({count}) / 2"
        return f"SELECT ({count}), ({middle})", [*self.params, *self.params, *self.params]

    def split_at(self, key: str, middle: Any) -> list[tuple[str, list[Any]]]:
        """The query as two parts that, read in order and concatenated, give its rows in its order.

        Needs ``order_by`` to start with ``key DESC``, no LIMIT/OFFSET and no GROUP BY. Rows whose key is NULL sort last
        in SQLite, so they belong to the second part.
        """
        if (
            not self.order_by.startswith(f"{key} DESC")
            or self.limit is not None
            or self.offset
            or self.group_by
        ):
            raise ValueError(f"split_at needs an unpaged query ordered by {key} DESC")
        first = replace(self, where=list(self.where), params=list(self.params)).filter(f"{key} >= ?", middle)
        second = replace(self, where=list(self.where), params=list(self.params)).filter(
            f"{key} < ? OR {key} IS NULL", middle
        )
        return [first.build(), second.build()]


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with LIKE's wildcards escaped (use ``ESCAPE '\\'``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
