"""Pure functions, tested without an event loop: shaping, SQL building, run ids, arguments, records."""

from __future__ import annotations

import gc
import json
import sqlite3
import weakref
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit import frames
from toolkit.arguments import check_limit, check_time_range, to_mjd, to_unix
from toolkit.db.base import Catalog
from toolkit.domains import images, jobs, sources
from toolkit.domains.query import Select, select_columns
from toolkit.errors import RecordNotFoundError, ValidationError
from toolkit.notes import model
from toolkit.records import Image, Stats, parse_json
from toolkit.runids import ms_name_for_run_id, run_id_for_ms, run_ids_for_ms
from toolkit.schema import OLDER, column_names

KINDS: dict[str, frames.Kind] = {"i": "int", "s": "text", "r": "real", "t": "time", "b": "bool", "j": "json"}
EXPECTED = {
    "i": "Int64",
    "s": "str",
    "r": "float64",
    "t": "datetime64[us, UTC]",
    "b": "boolean",
    "j": "str",
}


def dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {name: str(dtype) for name, dtype in frame.dtypes.items()}


# ---------------------------------------------------------------------------------------------- frames
def test_rows_and_arrow_give_the_same_dtypes_and_values() -> None:
    rows = [
        (1, "a", 1.5, 1_700_000_000.25, 1, '{"x": 1}'),
        (None, None, None, None, None, None),
        (3, "c", 2, 0, 0, "[]"),
    ]
    from_rows = frames.from_rows(rows, list(KINDS), KINDS)
    table = pa.table({name: pa.array([r[i] for r in rows]) for i, name in enumerate(KINDS)})
    from_arrow = frames.arrow_to_frame(table, KINDS)
    assert dtypes(from_rows) == dtypes(from_arrow) == EXPECTED
    pd.testing.assert_frame_equal(from_rows, from_arrow)
    assert from_rows["t"].iloc[0] == pd.Timestamp("2023-11-14 22:13:20.250", tz="UTC")
    assert from_rows["b"].tolist() == [True, pd.NA, False]
    assert from_rows["i"].isna().tolist() == [False, True, False]


def test_large_tables_take_the_column_by_column_path_with_the_same_result() -> None:
    n = frames.SMALL_TABLE_ROWS + 5
    table = pa.table({"i": pa.array(range(n)), "s": pa.array(["x"] * n), "t": pa.array([1.0] * n)})
    big = frames.arrow_to_frame(table, {"i": "int", "s": "text", "t": "time"})
    small = frames.arrow_to_frame(table.slice(0, 10), {"i": "int", "s": "text", "t": "time"})
    assert dtypes(big) == dtypes(small)
    assert len(big) == n


class _Body(bytearray):
    """A reader-process message body, as the SQLite reader's pipe delivers it (a subclass: weakly referable)."""


def test_a_frame_of_several_read_batches_lets_the_batches_go() -> None:
    """Each batch of a bulk read is one buffer that all its columns point into: once the frame is built,
    its string columns must not keep those buffers (the numbers in them were already copied out)."""
    n = frames.SMALL_TABLE_ROWS + 5
    batch = pa.record_batch({"s": pa.array([f"source-{i}" for i in range(n)]), "r": pa.array([0.5] * n)})
    sink = batch.serialize()
    bodies = [_Body(sink.to_pybytes()) for _ in range(2)]
    alive = [weakref.ref(body) for body in bodies]
    batches = [pa.ipc.read_record_batch(pa.py_buffer(body), batch.schema) for body in bodies]
    del bodies
    tables = [pa.Table.from_batches(batches)]
    del batches
    frame = frames.tables_to_frame(tables, {"s": "text", "r": "real"})
    gc.collect()
    assert [ref() for ref in alive] == [None, None]
    assert frame["s"].tolist() == [f"source-{i}" for i in range(n)] * 2
    assert frame["r"].sum() == n
    single = frames.arrow_to_frame(pa.Table.from_batches([batch]), {"s": "text", "r": "real"})
    assert single.equals(frame.iloc[:n])


def test_empty_results_keep_columns_and_dtypes() -> None:
    empty = frames.from_rows([], list(KINDS), KINDS)
    assert list(empty.columns) == list(KINDS) and dtypes(empty) == EXPECTED


def test_mixed_types_in_a_column_become_na_not_objects() -> None:
    frame = frames.from_rows([(1.5,), ("n/a",), (2,)], ["r"], {"r": "real"})
    assert frame["r"].dtype == "float64"
    assert frame["r"].isna().tolist() == [False, True, False]
    ints = frames.from_rows([(1,), (2.5,), ("x",)], ["i"], {"i": "int"})
    assert ints["i"].dtype == "Int64" and ints["i"].isna().tolist() == [False, True, True]
    table = pa.table({"t": pa.array(["2025-01-01", None])})
    assert str(frames.arrow_to_frame(table, {"t": "time"})["t"].dtype) == "datetime64[us, UTC]"


def test_absent_columns_come_out_missing_in_place_with_their_dtypes() -> None:
    """Columns the rows do not hold (a schema that lacks them) are added all missing, typed, in order; the
    same on the forgiving path a mixed-type column takes."""
    names = list(KINDS)
    absent = ["s", "t", "b"]
    held = [i for i, n in enumerate(names) if n not in absent]
    full = [(1, "a", 1.5, 1.7e9, 1, "{}"), (2, None, None, None, None, None)]
    got = frames.from_rows([tuple(r[i] for i in held) for r in full], names, KINDS, absent)
    assert list(got.columns) == names and dtypes(got) == EXPECTED
    assert got[absent].isna().all().all() and got["i"].tolist() == [1, 2]
    mixed = frames.from_rows([(1, "x", "{}"), (2.5, 3, None)], names, KINDS, absent)
    assert list(mixed.columns) == names and dtypes(mixed) == EXPECTED
    assert mixed["i"].isna().tolist() == [False, True] and mixed[absent].isna().all().all()
    assert dtypes(frames.from_rows([], names, KINDS, absent)) == EXPECTED


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
            st.one_of(st.none(), st.text(max_size=5)),
            st.one_of(st.none(), st.floats(allow_nan=True)),
            st.one_of(st.none(), st.floats(0, 4e9)),
            st.one_of(st.none(), st.integers(0, 1)),
            st.one_of(st.none(), st.text(max_size=3)),
        ),
        max_size=12,
    )
)
def test_the_fast_frame_constructor_equals_pandas_public_one(rows: list[tuple[Any, ...]]) -> None:
    """frame_of builds through pandas' private from-arrays constructor; its frames equal the public
    constructor's, column for column (and a frame's column labels are its own)."""
    fast = frames.from_rows(rows, list(KINDS), KINDS)
    arrays = [fast[name].array for name in KINDS]
    public = frames.frame_of(arrays, list(KINDS), len(rows), fast=False)
    pd.testing.assert_frame_equal(fast, public)
    fast.columns.name = "renamed"
    assert frames.from_rows(rows, list(KINDS), KINDS).columns.name is None


@given(st.lists(st.one_of(st.integers(-(2**62), 2**62), st.just(-(2**63))), max_size=20))
def test_the_fast_time_array_equals_pandas_public_one(micros: list[int]) -> None:
    """Light-curve times are wrapped by pandas' private DatetimeArray constructor; the result equals
    pd.array's (NaT included) in values and dtype."""
    import numpy as np

    ticks = np.array(micros, dtype="int64").view("datetime64[us]")
    fast, public = frames._time_array(ticks), frames._time_array(ticks, fast=False)
    assert type(fast) is type(public) and fast.dtype == public.dtype
    pd.testing.assert_extension_array_equal(fast, public)


def test_parts_of_one_query_join_as_arrow_into_the_frame_of_one_read() -> None:
    """A column all NULL in one part (Arrow's null type) joins its typed values in the other; parts whose
    types cannot join (SQLite stores what it is given) are shaped one by one; the parts list is emptied."""
    kinds: dict[str, frames.Kind] = {"i": "int", "s": "text", "r": "real"}
    whole = pa.table({"i": [1, 2, 3], "s": ["a", None, "c"], "r": [None, None, 2.5]})
    parts = [whole.slice(0, 2), whole.slice(2)]
    parts[0] = pa.table({"i": [1, 2], "s": ["a", None], "r": pa.nulls(2)})  # as ADBC types an all-NULL batch
    want = frames.arrow_to_frame(whole, kinds)
    pd.testing.assert_frame_equal(frames.tables_to_frame(parts, kinds), want)
    assert parts == []
    clash = [pa.table({"i": [1], "s": ["a"], "r": [1.0]}), pa.table({"i": [2], "s": [7.5], "r": ["x"]})]
    mixed = frames.tables_to_frame(clash, kinds)
    assert dtypes(mixed) == {"i": "Int64", "s": "str", "r": "float64"} and clash == []
    assert mixed["i"].tolist() == [1, 2] and mixed["r"].isna().tolist() == [False, True]
    posted = frames.tables_to_frame([whole], kinds, post=lambda f: f.assign(n=len(f)))
    assert posted["n"].tolist() == [3, 3, 3]


def test_duplicate_column_names_are_kept() -> None:
    frame = frames.from_rows([(1, 2)], ["a", "a"], {})
    assert list(frame.columns) == ["a", "a"]


def test_plain_values_for_records() -> None:
    assert frames.plain(pd.NA) is None and frames.plain(pd.NaT) is None and frames.plain(float("nan")) is None
    stamp = frames.plain(pd.Timestamp("2025-01-01T00:00:00.5", tz="UTC"))
    assert isinstance(stamp, datetime) and stamp.microsecond == 500_000
    import numpy as np

    assert type(frames.plain(np.int64(3))) is int


# --------------------------------------------------------------------------------------------- SQL building
NEWER_CATALOG = Catalog({t: frozenset(column_names(t)) for t in ("images", "ms_index", "jobs", "photometry")})
OLDER_CATALOG = Catalog({t: frozenset(cols) for t, cols in OLDER.items() if t != "jobs"})


def test_a_light_curve_on_an_older_schema_selects_only_its_columns() -> None:
    sql, _ = sources.lightcurve_query(OLDER_CATALOG, "S1", None, None)
    absent = sources.lightcurve_absent(OLDER_CATALOG)
    assert absent and "NULL AS" not in sql and not any(f"p.{name}" in sql for name in absent)
    assert sources.lightcurve_absent(NEWER_CATALOG) == []


def test_missing_columns_are_selected_as_null() -> None:
    newer = select_columns(NEWER_CATALOG, "images", "i")
    older = select_columns(OLDER_CATALOG, "images", "i")
    assert len(newer) == len(older) == len(column_names("images"))
    assert "i.dynamic_range AS dynamic_range" in newer
    assert "NULL AS dynamic_range" in older and "i.noise_jy AS noise_jy" in older


def test_filters_are_bound_never_pasted() -> None:
    evil = "x'; DROP TABLE images; --"
    filters = images.ImageFilters(type=evil, ms_path=evil, search=evil)
    sql, params = images.LISTING.list_select(NEWER_CATALOG, filters, limit=5, offset=10).build()
    assert evil not in sql and params.count(evil) == 2 and params[-2:] == [5, 10]
    assert f"%{evil}%" in params
    q = Select(["a"], "t").filter_in("a", ["x", "y"]).filter_range("b", 1, None)
    assert q.build() == ("SELECT a FROM t WHERE (a IN (?, ?)) AND (b >= ?)", ["x", "y", 1])


def test_jobs_are_derived_from_ms_index_without_a_jobs_table() -> None:
    sql, _ = jobs.LISTING.list_select(OLDER_CATALOG, jobs.JobFilters()).build()
    assert "FROM ms_index AS m" in sql and "1 AS derived" in sql
    sql, _ = jobs.LISTING.list_select(NEWER_CATALOG, jobs.JobFilters()).build()
    assert "FROM jobs AS j" in sql and "0 AS derived" in sql


def test_job_lookup_by_derived_run_id_matches_the_ms_name() -> None:
    _, params = jobs.get_select(NEWER_CATALOG, "job-2025-10-05-123000").build()
    assert params[:2] == ["job-2025-10-05-123000", "%/2025-10-05T12:30:00.ms"]
    with pytest.raises(RecordNotFoundError):
        jobs.get_select(OLDER_CATALOG, "not-derived")


def test_unknown_photometry_columns_are_refused() -> None:
    with pytest.raises(ValidationError, match="bogus"):
        sources.check_columns(["mjd", "bogus"])
    assert sources.check_columns(["mjd", "mjd", "flux_jy"]) == ["mjd", "flux_jy"]


# ----------------------------------------------------------------------------------------------- run ids
def test_run_id_derivation_round_trips() -> None:
    assert run_id_for_ms("/stage/dsa110-contimg/ms/2025-10-05T12:30:00.ms") == "job-2025-10-05-123000"
    assert ms_name_for_run_id("job-2025-10-05-123000") == "2025-10-05T12:30:00.ms"
    assert run_id_for_ms("/data/other.ms") is None and ms_name_for_run_id("abc") is None
    series = run_ids_for_ms(pd.Series(["/a/2025-10-05T12:30:00.ms", "/a/odd.ms"]))
    assert series.iloc[0] == "job-2025-10-05-123000" and pd.isna(series.iloc[1])


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
def test_run_id_inverse_property(moment: datetime) -> None:
    name = moment.strftime("%Y-%m-%dT%H:%M:%S") + ".ms"
    run_id = run_id_for_ms("/stage/ms/" + name)
    assert run_id is not None and ms_name_for_run_id(run_id) == name


# ------------------------------------------------------------------------------------------- arguments
def test_times_accept_datetimes_dates_and_iso_strings() -> None:
    assert to_unix("1970-01-02", "since") == 86400.0
    assert to_unix(datetime(1970, 1, 2, tzinfo=UTC), "since") == 86400.0
    assert to_unix(datetime(1970, 1, 2, 1, tzinfo=timezone(timedelta(hours=1))), "since") == 86400.0
    assert to_unix(date(1970, 1, 2), "since") == 86400.0
    assert to_mjd("1858-11-17", "since") == pytest.approx(0.0)
    with pytest.raises(ValidationError, match="since"):
        to_unix("yesterday-ish", "since")
    with pytest.raises(ValidationError, match="before"):
        check_time_range("2025-02-01", "2025-01-01")


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_limits_must_be_whole_non_negative(bad: object) -> None:
    with pytest.raises(ValidationError):
        check_limit(bad, 0)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        check_limit(None, bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- records
def test_records_to_dict_and_html_card() -> None:
    image = Image(
        id=1, path="/a<b>.fits", ms_path=None, type="image", created_at=None, qa_grade="fail", run_id=None,
        noise_jy=0.001, beam_major_arcsec=None, beam_minor_arcsec=None, beam_pa_deg=None, dynamic_range=None,
        pbcor=False, format=None, field_name=None, center_ra_deg=None, center_dec_deg=None, imsize_x=None,
        imsize_y=None, cellsize_arcsec=None, freq_ghz=None, bandwidth_mhz=None, integration_sec=None,
    )  # fmt: skip
    card = image._repr_html_()
    assert "/a&lt;b&gt;.fits" in card and "<b>.fits" not in card
    assert "fail" in card and "#cf222e" in card
    assert image.to_dict()["path"] == "/a<b>.fits"
    json.dumps(image.to_dict())
    with pytest.raises(AttributeError):
        image.path = "x"  # type: ignore[misc]
    stats = Stats(1, {"imaged": 1}, 0, 0, 0, 0, {}, 0, pd.DataFrame({"id": [1]}))
    assert stats.to_dict()["recent_images"] == [{"id": 1}]


def test_parse_json_keeps_broken_text() -> None:
    assert parse_json('{"a": 1}') == {"a": 1}
    assert parse_json(None) is None
    assert parse_json("{broken") == "{broken"


# ------------------------------------------------------------------------------------- split listings
def test_split_halves_concatenate_to_the_single_query(tmp_path: Path) -> None:
    """Ties at the split value, NULL keys and filters: the two halves read in order equal the one query."""
    db = tmp_path / "split.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k REAL, kind TEXT)")
        keys = [float(i // 3) for i in range(30)] + [None] * 5  # runs of ties, then NULLs (sort last)
        conn.executemany(
            "INSERT INTO t (k, kind) VALUES (?, ?)", [(k, "ab"[i % 2]) for i, k in enumerate(keys)]
        )
    conn = sqlite3.connect(db)
    for kind in (None, ["a"]):
        q = Select(["t.id", "t.k"], "t").filter_in("t.kind", kind)
        q.order_by = "t.k DESC, t.id DESC"
        whole = conn.execute(*q.build()).fetchall()
        count, middle = conn.execute(*q.split_point("t.k", "t")).fetchone()
        assert count == len(whole)
        assert middle == whole[len(whole) // 2][1]
        halves = [conn.execute(sql, params).fetchall() for sql, params in q.split_at("t.k", middle)]
        assert all(halves) and halves[0] + halves[1] == whole
    conn.close()


def test_split_refuses_paged_or_differently_ordered_queries() -> None:
    q = Select(["t.id"], "t")
    q.order_by = "t.k DESC"
    q.limit = 10
    with pytest.raises(ValueError, match="unpaged"):
        q.split_at("t.k", 1.0)
    q.limit, q.order_by = None, "t.k ASC"
    with pytest.raises(ValueError, match=r"ordered by t\.k DESC"):
        q.split_at("t.k", 1.0)


def test_rows_and_arrow_round_times_the_same_way() -> None:
    """Stored times finer than a microsecond round alike on both paths (they once differed by 1 us)."""
    values = [1796038022.1358109, None, 1796037696.0000975, 1.5e9]
    from_rows = frames.from_rows([(v,) for v in values], ["t"], {"t": "time"})
    from_arrow = frames.arrow_to_frame(pa.table({"t": pa.array(values)}), {"t": "time"})
    pd.testing.assert_frame_equal(from_rows, from_arrow)
    assert from_rows["t"][0].microsecond == 135811


def test_times_no_datetime_can_hold_are_missing_on_both_paths() -> None:
    """A damaged stored time (inf, 1e300, beyond year 292,277) is NaT, not a pandas error or a wrapped date."""
    values = [1.5e9, float("inf"), -1e300, 9.3e12, -9.3e12, None, 1e12]
    from_rows = frames.from_rows([(v,) for v in values], ["t"], {"t": "time"})
    from_arrow = frames.arrow_to_frame(pa.table({"t": pa.array(values)}), {"t": "time"})
    pd.testing.assert_frame_equal(from_rows, from_arrow)
    assert from_rows["t"].isna().tolist() == [False, True, True, True, True, True, False]
    assert from_rows["t"][6] == pd.Timestamp(1e12, unit="s", tz="UTC")


def test_flags_from_rows_keep_missing_values() -> None:
    frame = frames.from_rows([(1,), (None,), (0,), (5,)], ["b"], {"b": "bool"})
    assert str(frame["b"].dtype) == "boolean"
    assert frame["b"].tolist() == [True, pd.NA, False, True]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90.0), (1.5, 1.5), ("3600", 3600.0), (" 1.5 ", 1.5), ("90s", 90.0), ("90min", 5400.0), ("6h", 21600.0), ("2d", 172800.0),
     ("2 days", 172800.0), (timedelta(minutes=3), 180.0)],
)  # fmt: skip
def test_one_duration_parser_reads_bare_numbers_as_seconds(value: object, seconds: float) -> None:
    from toolkit.arguments import to_duration

    assert to_duration(value, "d").total_seconds() == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value", ["", "soon", "nan", "NaT", 0, -1, float("nan"), float("inf"), 10**400, True, [1], "x" * 100]
)
def test_durations_that_name_no_positive_finite_time_are_refused(value: object) -> None:
    from toolkit.arguments import to_duration

    with pytest.raises(ValidationError, match="d must be"):
        to_duration(value, "d")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fmt", "args", "sizes"),
    [
        ("%d %*c", (5, 1000, "x"), [1000]),
        ("%%*d %5.2f", (3.0,), ["5", "2"]),
        ("%.*c", (7, "x"), [7]),
        ("%-10s|%*.*f", ("a", 8, 3, 1.5), ["10", 8, 3]),
        ("no conversions", (), []),
    ],
)
def test_printf_widths_are_read_as_sqlite_reads_them(
    fmt: str, args: tuple[object, ...], sizes: list[object]
) -> None:
    from toolkit.db.sqlite import printf_widths

    assert printf_widths(fmt, args) == sizes


def test_the_stage_rule_in_sql_is_the_stage_table() -> None:
    """Listings' ``qa_grade`` (SQL) and QA's fallback (the dict) come from one table and agree on every stage."""
    import sqlite3

    from toolkit.vocab import MS_STAGES, STAGE_GRADES, stage_grade_sql

    conn = sqlite3.connect(":memory:")
    for stage in [*MS_STAGES, None, "renamed_later"]:
        (got,) = conn.execute(f"SELECT {stage_grade_sql('s')} FROM (SELECT ? AS s)", [stage]).fetchone()
        want = None if stage is None else STAGE_GRADES.get(stage, "fail")
        assert got == want, stage


def test_one_catalog_loader_for_both_backends() -> None:
    from toolkit.db.base import POSTGRESQL

    sqlite_rows = [("images", "id"), ("images", "path"), ("jobs", "id")]
    catalog = Catalog.from_columns(sqlite_rows)
    assert catalog.columns("images") == {"id", "path"} and catalog.missing(["images", "ms_index"]) == [
        "ms_index"
    ]
    assert catalog.time_placeholder("images", "created_at") == "?"
    pg_rows = [("images", "created_at", "timestamp with time zone"), ("images", "id", "bigint")]
    pg = Catalog.from_columns(pg_rows, POSTGRESQL)
    assert pg.time_placeholder("images", "created_at") == "to_timestamp(?)"
    assert pg.time_placeholder("images", "id") == "?" and pg.dialect.name == "postgresql"


# ------------------------------------------------------------------------------------------ notes
_ACTIONS = st.sampled_from(["comment", "tag", "untag", "sign_off", "clear_sign_off", "classify"])


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]), _ACTIONS, st.sampled_from(["rfi", "edge"]), st.integers(0, 3)
        ),
        max_size=40,
    ),
    st.integers(0, 40),
)
def test_the_summary_is_the_current_annotations_per_target_and_merges_after_a_split(
    drawn: list[tuple[str, str, str, int]], split: int
) -> None:
    """The one-pass summary agrees with the current annotations (derived another way, per kind), and a
    summary updated with the targets touched after any point equals the one built from every event."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        model.make_event(
            action, "source", target, author=f"u{n % 2}", created_at=start + timedelta(seconds=n), ordinal=0,
            text="why" if action in ("comment", "sign_off", "clear_sign_off") else None,
            tag=tag if action in ("tag", "untag") else None,
            grade=("good", "warn", "fail")[k % 3] if action == "sign_off" else None,
            label=model.DEFAULT_LABELS[k] if action == "classify" else None,
        )
        for n, (target, action, tag, k) in enumerate(drawn)
    ]  # fmt: skip
    frame = model.events_frame([e.to_dict() for e in events])
    summary = model.summary_by_target(frame)
    current = model.current_annotations(frame)
    assert sorted(summary.index) == sorted(set(frame["target"]))
    for target, row in summary.iterrows():
        mine = current[current["target"] == target]
        assert row["tags"] == ",".join(sorted(mine.loc[mine["kind"] == "tag", "tag"]))
        assert row["n_comments"] == int((mine["kind"] == "comment").sum())
        signed, labelled = mine[mine["kind"] == "sign_off"], mine[mine["kind"] == "label"]
        assert (pd.isna(row["signoff_grade"]), pd.isna(row["label"])) == (signed.empty, labelled.empty)
        if len(signed):
            assert (row["signoff_grade"], row["signoff_by"], row["signoff_at"]) == (
                signed["grade"].iloc[0], signed["author"].iloc[0], signed["created_at"].iloc[0]
            )  # fmt: skip
        if len(labelled):
            assert row["label"] == labelled["label"].iloc[0]
    before, after = frame.iloc[:split], frame.iloc[split:]
    touched = frame[frame["target"].isin(set(after["target"]))].reset_index(drop=True)
    merged = model.merge_summaries(
        model.summary_by_target(before.reset_index(drop=True)), model.summary_by_target(touched)
    )
    pd.testing.assert_frame_equal(merged.sort_index(), summary.sort_index())


def test_grid_cells_read_like_a_table() -> None:
    from toolkit.widgets.grid import MAX_CELL, display_cell, display_cells, display_columns

    path = "/stage/dsa110-contimg/images/2026-12-04T12:10:00.img.image.fits"
    assert display_cell("path", path) == ("2026-12-04T12:10:00.img.image.fits", path)
    assert display_cell("noise_jy", 0.0042190) == ("4.219", "")  # mJy, as the header says
    assert display_cell("noise_jy", float("nan")) == ("—", "") and display_cell("noise_jy", pd.NA) == (
        "—",
        "",
    )
    assert display_cell("dynamic_range", 222.067) == ("222", "")
    assert (
        display_cell("created_at", pd.Timestamp("2026-12-04 13:04:48.8159", tz="UTC"))[0]
        == "2026-12-04 13:04:48"
    )
    assert display_cell("cal_applied", True) == ("yes", "") and display_cell("n_measurements", 40) == (
        "40",
        "",
    )
    long = "x" * (MAX_CELL + 50)
    text, title = display_cell("summary", long)
    assert len(text) == MAX_CELL and text.endswith("…") and title == long
    columns = display_columns(["noise_jy", "path"], numeric=["noise_jy"])
    assert columns[0] == {"name": "noise_jy", "header": "noise", "unit": "mJy", "numeric": True}
    frame = pd.DataFrame({"path": [path, None], "noise_jy": [0.001, None]})
    assert display_cells(frame, ["path", "noise_jy"]) == (
        [["2026-12-04T12:10:00.img.image.fits", "1.000"], ["—", "—"]],
        [[path, ""], ["", ""]],
    )


def test_scatter_picks_what_a_click_or_a_lasso_means() -> None:
    from toolkit.widgets.scatter import PICK_RADIUS, density, inside, nearest, padded_view

    xs, ys = [0.0, 1.0, 2.0, float("nan")], [0.0, 1.0, 2.0, 5.0]
    view = padded_view(xs, ys, pad=0.0)
    assert view == [0.0, 2.0, 0.0, 2.0]  # the NaN point does not stretch the view
    assert nearest(xs, ys, [0.98, 1.03], view) == 1
    assert nearest(xs, ys, [0.5, 1.5], view) is None  # nothing within the pick radius
    assert nearest(xs, ys, [1.0 + 2 * PICK_RADIUS * 0.9, 1.0], view) == 1
    assert inside(xs, ys, [[0.5, 0.5], [2.5, 0.5], [2.5, 2.5], [0.5, 2.5]]) == [1, 2]
    assert inside(xs, ys, [[0, 0], [1, 1]]) == []  # two corners are not a lasso
    grid = density(xs, ys, [0.0, 2.0, 0.0, 2.0])
    assert sum(grid["counts"]) == 3 and len(grid["counts"]) == grid["nx"] * grid["ny"]
