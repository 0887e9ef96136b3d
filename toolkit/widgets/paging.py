"""Keyset paging for the table views (pure: SQL text and parameters, no I/O).

A page is asked for by the row it starts after (or before), never by OFFSET, so page 1,000 costs what page 1
costs: the database walks the sort index from the cursor. The order is ``sort column, key`` where the key is
unique, so ties on the sort column are broken the same way every time. NULL sort values sort below every
value, as SQLite sorts them, so the order is the index's order and no page needs a sort of the whole table. Counts stop at ``COUNT_CAP`` (the way Datasette caps them): "10,000+" is all a
pager needs, and a count never scans a whole large table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

COUNT_CAP = 10_000
# Each page row carries its raw sort value under this name: cursors need the stored value, not a
# converted one (a datetime rounded to microseconds would repeat or skip rows at page edges).
SORT_VALUE = "_sort_value"
PAGE_SIZES = (50, 100, 200, 500)


@dataclass(frozen=True)
class Cursor:
    """Where a page starts or ends: the row's sort value (None for NULL) and its key."""

    value: Any
    key: Any


@dataclass(frozen=True)
class TableQuery:
    """One table view's query: columns, FROM clause, filters, and its order (``sort`` then the unique ``key``)."""

    columns: Sequence[str]
    source: str
    key: str
    sort: str
    descending: bool = True
    where: tuple[str, ...] = ()
    params: tuple[Any, ...] = ()
    group_by: str = ""
    count_source: str = ""  # a cheaper FROM for counting (no joins that only add columns); default: source
    not_null: frozenset[str] = frozenset()  # sort columns that are never NULL (their order can use an index)
    # Spell out SQLite's NULL order (NULLs below every value) for databases that sort NULLs the other way
    # (PostgreSQL puts them last ascending); SQLite itself gets the plain order its indexes serve.
    explicit_nulls: bool = False

    def filtered(self, clause: str, *params: Any) -> TableQuery:
        return replace(self, where=(*self.where, clause), params=(*self.params, *params))

    def sorted_by(self, sort: str, descending: bool) -> TableQuery:
        return replace(self, sort=sort, descending=descending)

    # --------------------------------------------------------------------------------- SQL pieces
    @property
    def _nullable(self) -> bool:
        return self.sort != self.key and self.sort not in self.not_null

    def _order(self, reverse: bool = False) -> str:
        direction = "DESC" if self.descending != reverse else "ASC"
        if self.sort == self.key:
            return f"{self.key} {direction}"
        # A plain ``sort, key`` order lets SQLite walk an index on the sort column instead of sorting.
        nulls = (" NULLS LAST" if direction == "DESC" else " NULLS FIRST") if self.explicit_nulls else ""
        return f"{self.sort} {direction}{nulls}, {self.key} {direction}"

    def _after(self, cursor: Cursor, reverse: bool) -> tuple[str, list[Any]]:
        """Rows strictly after ``cursor`` in the page order (strictly before it, with ``reverse``).

        NULL sort values order as SQLite orders them: below every value (first ascending, last descending).
        """
        walking_down = self.descending != reverse
        beyond = "<" if walking_down else ">"
        s, k = self.sort, self.key
        if s == k:
            return f"{k} {beyond} ?", [cursor.key]
        if not self._nullable:
            return f"({s}, {k}) {beyond} (?, ?)", [cursor.value, cursor.key]
        if cursor.value is None:
            if walking_down:  # NULL rows are the last ones: only those with a smaller key remain
                return f"({s} IS NULL AND {k} < ?)", [cursor.key]
            return f"({s} IS NOT NULL OR {k} > ?)", [cursor.key]
        if walking_down:
            return f"(({s}, {k}) < (?, ?) OR {s} IS NULL)", [cursor.value, cursor.key]
        return f"({s}, {k}) > (?, ?)", [cursor.value, cursor.key]

    def page(
        self, size: int, *, after: Cursor | None = None, before: Cursor | None = None
    ) -> tuple[str, list[Any]]:
        """SQL for up to ``size`` rows after ``after`` (next page), before ``before`` (previous page; the
        rows come back in reverse and the caller flips them), or from the start."""
        where = list(self.where)
        params = list(self.params)
        reverse = before is not None
        cursor = before if reverse else after
        if cursor is not None:
            clause, values = self._after(cursor, reverse)
            where.append(clause)
            params += values
        return self._select(where, params, self._order(reverse), size)

    def last_page(self, size: int) -> tuple[str, list[Any]]:
        """The last ``size`` rows, in reverse (the caller flips them): no walk through the whole table."""
        return self._select(list(self.where), list(self.params), self._order(reverse=True), size)

    def cursor_at(self, offset: int) -> tuple[str, list[Any]]:
        """The sort value and key of the row at ``offset`` (to jump to a page by number): an index-only walk."""
        if self._grouped_by_key:
            return self._group_at(offset)
        sql, params = self._select(
            list(self.where), list(self.params), self._order(), 1, columns=[f"{self.sort}", f"{self.key}"]
        )
        return sql.replace("LIMIT ?", "LIMIT ? OFFSET ?"), [*params, offset]

    @property
    def _grouped_by_key(self) -> bool:
        return bool(self.group_by) and self.sort == self.key == self.group_by

    def _group_walk(self, steps_param: str) -> str:
        """The group keys in page order by a loose index scan: one index seek per group, where walking the
        grouped rows reads every row (10,000 sources over 1M photometry rows: ~30 ms instead of ~100 ms)."""
        pick, beyond = ("MAX", "<") if self.descending else ("MIN", ">")
        where = " AND ".join(f"({w})" for w in self.where) or "1 = 1"
        k = self.key
        return (
            f"WITH RECURSIVE walk(k, n) AS ("
            f"SELECT (SELECT {pick}({k}) FROM {self.source} WHERE {where}), 0 "
            f"UNION ALL SELECT (SELECT {pick}({k}) FROM {self.source} WHERE {where} AND {k} {beyond} walk.k), n + 1 "
            f"FROM walk WHERE n < {steps_param} AND k IS NOT NULL)"
        )

    def _group_at(self, offset: int) -> tuple[str, list[Any]]:
        sql = f"{self._group_walk('?')} SELECT k, k FROM walk WHERE n = ? AND k IS NOT NULL"
        return sql, [*self.params, *self.params, offset, offset]

    def count(self, cap: int = COUNT_CAP) -> tuple[str, list[Any]]:
        """How many rows match, counting at most ``cap + 1`` (so the caller can show "cap+")."""
        if self._grouped_by_key:
            sql = f"{self._group_walk('?')} SELECT COUNT(*) FROM walk WHERE k IS NOT NULL"
            return sql, [*self.params, *self.params, cap]
        where = f" WHERE {' AND '.join(f'({w})' for w in self.where)}" if self.where else ""
        group = f" GROUP BY {self.group_by}" if self.group_by else ""
        source = self.count_source or self.source
        return f"SELECT COUNT(*) FROM (SELECT 1 FROM {source}{where}{group} LIMIT ?) AS counted", [
            *self.params,
            cap + 1,
        ]

    def _select(
        self, where: list[str], params: list[Any], order: str, size: int, columns: Sequence[str] | None = None
    ) -> tuple[str, list[Any]]:
        cols = ", ".join(columns or [*self.columns, f"{self.sort} AS {SORT_VALUE}"])
        sql = f"SELECT {cols} FROM {self.source}"
        if self.group_by:
            # Filters are on the grouped column (WHERE, before grouping: the index narrows the rows) unless
            # the order is by an aggregate, whose cursor can only be compared after grouping (HAVING).
            clause = " WHERE " if self.sort == self.group_by else " HAVING "
            if where and clause == " WHERE ":
                sql += clause + " AND ".join(f"({w})" for w in where)
            sql += f" GROUP BY {self.group_by}"
            if where and clause == " HAVING ":
                sql += clause + " AND ".join(f"({w})" for w in where)
        elif where:
            sql += " WHERE " + " AND ".join(f"({w})" for w in where)
        return f"{sql} ORDER BY {order} LIMIT ?", [*params, size]


@dataclass
class PageState:
    """Where a table view is: the page number and the cursors of the pages seen so far."""

    size: int = 50
    number: int = 0  # 0-based
    firsts: list[Cursor] = field(default_factory=list)  # first row of each page seen, by number
    last: Cursor | None = None  # last row of the current page
    count: int | None = None
    capped: bool = False

    @property
    def pages(self) -> int | None:
        if self.count is None or self.capped:
            return None
        return max(1, -(-self.count // self.size))

    def label(self) -> str:
        total = "?" if self.count is None else (f"{COUNT_CAP:,}+" if self.capped else f"{self.count:,}")
        pages = self.pages
        return f"page {self.number + 1}{f' of {pages:,}' if pages else ''} · {total} rows"


def check_page_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not PAGE_SIZES[0] <= size <= PAGE_SIZES[-1]:
        from ..errors import ValidationError

        raise ValidationError(f"page size must be between {PAGE_SIZES[0]} and {PAGE_SIZES[-1]}, got {size!r}")
    return size


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with LIKE's wildcards escaped (use ``ESCAPE '\\'``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
