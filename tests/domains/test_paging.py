"""Keyset paging SQL against plain ORDER BY/OFFSET on real SQLite tables with ties and NULLs (no event loop)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.domains.paging import Cursor, KeysetQuery
from toolkit.domains.query import Select, like_pattern
from toolkit.errors import ValidationError
from toolkit.widgets.paging import PageState, check_page_size


def table(values: list[int | None]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER, name TEXT)")
    conn.executemany("INSERT INTO t (v, name) VALUES (?, ?)", [(v, f"row_{i}") for i, v in enumerate(values)])
    return conn


def expected_order(conn: sqlite3.Connection, descending: bool, where: str = "1") -> list[int]:
    d = "DESC" if descending else "ASC"
    return [r[0] for r in conn.execute(f"SELECT id FROM t WHERE {where} ORDER BY v {d}, id {d}")]


def walk_forward(conn: sqlite3.Connection, q: KeysetQuery, size: int) -> list[int]:
    seen: list[int] = []
    cursor: Cursor | None = None
    while True:
        rows = conn.execute(*q.page(size, after=cursor)).fetchall()
        seen += [r[0] for r in rows]
        if len(rows) < size:
            return seen
        cursor = Cursor(rows[-1][1], rows[-1][0])


def walk_backward(conn: sqlite3.Connection, q: KeysetQuery, size: int) -> list[int]:
    rows = conn.execute(*q.last_page(size)).fetchall()[::-1]
    seen = [r[0] for r in rows]
    while rows:
        first = Cursor(rows[0][1], rows[0][0])
        rows = conn.execute(*q.page(size, before=first)).fetchall()[::-1]
        seen = [r[0] for r in rows] + seen
    return seen


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(0, 6)), min_size=0, max_size=40),
    st.booleans(),
    st.integers(1, 7),
)
def test_keyset_pages_equal_order_by_in_both_directions(
    values: list[int | None], descending: bool, size: int
) -> None:
    conn = table(values)
    q = KeysetQuery(Select(["t.id", "t.v"], "t"), key="t.id", sort="t.v", descending=descending)
    want = expected_order(conn, descending)
    assert walk_forward(conn, q, size) == want
    assert walk_backward(conn, q, size) == want
    # Jumping to a page by number starts where walking would.
    for offset in range(0, len(want), size):
        _, key = conn.execute(*q.cursor_at(offset)).fetchone()
        assert key == want[offset]
    count = conn.execute(*q.count(cap=10)).fetchone()[0]
    assert count == min(len(want), 11)


def test_filters_a_non_null_sort_and_the_key_alone() -> None:
    conn = table([3, 1, 2, 2, None, 5])
    q = KeysetQuery(
        Select(["t.id", "t.v"], "t").filter("t.v >= ?", 2), key="t.id", sort="t.v", descending=False
    )
    assert walk_forward(conn, q, 2) == expected_order(conn, False, "v >= 2")
    by_key = KeysetQuery(Select(["t.id", "t.id"], "t"), key="t.id", sort="t.id", descending=True)
    assert walk_forward(conn, by_key, 4) == [6, 5, 4, 3, 2, 1]
    assert "IS NULL" not in by_key.page(4)[0]
    not_null = KeysetQuery(
        Select(["t.id", "t.name"], "t"), key="t.id", sort="t.name", not_null=frozenset({"t.name"})
    )
    assert "IS NULL" not in not_null.page(2, after=Cursor("row_3", 4))[0]


def test_grouped_pages_filter_before_grouping() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE p (id INTEGER PRIMARY KEY, source_id TEXT, flux REAL)")
    conn.executemany(
        "INSERT INTO p (source_id, flux) VALUES (?, ?)", [(f"S{i % 7}", float(i)) for i in range(50)]
    )
    q = KeysetQuery(
        Select(["p.source_id", "p.source_id", "COUNT(*)"], "p", group_by="p.source_id"),
        key="p.source_id",
        sort="p.source_id",
        descending=False,
    )
    sql, params = q.page(3, after=Cursor("S2", "S2"))
    assert sql.index("WHERE") < sql.index("GROUP BY")
    assert [r[0] for r in conn.execute(sql, params)] == ["S3", "S4", "S5"]
    # Jumping by number walks the group keys one index seek at a time, in either direction.
    for descending in (False, True):
        grouped = Select(
            ["p.source_id", "p.source_id"], "p", where=["p.source_id <> 'S4'"], group_by="p.source_id"
        )
        walk = KeysetQuery(grouped, key="p.source_id", sort="p.source_id", descending=descending)
        keys = sorted({f"S{i % 7}" for i in range(50)} - {"S4"}, reverse=descending)
        for offset, key in enumerate(keys):
            assert conn.execute(*walk.cursor_at(offset)).fetchone() == (key, key)
        assert conn.execute(*walk.cursor_at(len(keys))).fetchone() is None
        assert conn.execute(*walk.count(cap=3)).fetchone()[0] == 4  # cap + 1: "3+"
        assert conn.execute(*walk.count()).fetchone()[0] == len(keys)


def test_page_state_labels_and_checks() -> None:
    state = PageState(size=50, number=2, count=1234)
    assert state.label() == "page 3 of 25 · 1,234 rows"
    assert PageState(size=50, count=10_001, capped=True).label() == "page 1 · 10,000+ rows"
    with pytest.raises(ValidationError, match="between 50 and 500"):
        check_page_size(20)
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE f (path TEXT)")
    conn.executemany("INSERT INTO f VALUES (?)", [("a_b%c",), ("axbyc",)])
    hits: list[Any] = conn.execute(
        "SELECT path FROM f WHERE path LIKE ? ESCAPE '\\'", [like_pattern("_b%")]
    ).fetchall()
    assert hits == [("a_b%c",)]


def test_explicit_null_order_matches_sqlites_own() -> None:
    """Spelled out (as PostgreSQL needs), the order is SQLite's: NULLs first ascending, last descending."""
    conn = table([3, None, 1, None, 2])
    for descending in (True, False):
        q = KeysetQuery(
            Select(["t.id", "t.v"], "t"), key="t.id", sort="t.v", descending=descending, explicit_nulls=True
        )
        assert "NULLS" in q.page(2)[0]
        assert walk_forward(conn, q, 2) == expected_order(conn, descending)
        assert walk_backward(conn, q, 2) == expected_order(conn, descending)
