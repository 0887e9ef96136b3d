"""Streaming reads and exports of the photometry (issue 17), and the seed-era schema, on real demo sites."""

from __future__ import annotations

import io
import json
import math
import os
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from toolkit import AsyncClient, Client, FileNotAccessibleError, ValidationError, frames, science
from toolkit.cli import main
from toolkit.demo import DemoSite, build_demo_site
from toolkit.domains.sources import LIGHTCURVE_KINDS, lightcurve_columns

from ..test_spill import is_mapped


async def test_batches_add_up_to_the_whole_frame(client: AsyncClient) -> None:
    whole = await client.sources.measurements()
    sizes = []
    parts = []
    async for batch in client.sources.iter_measurements(batch_rows=700):
        sizes.append(len(batch))
        parts.append(batch)
    assert max(sizes) == 700 and sizes[-1] <= 700 and sum(sizes) == len(whole)
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)
    # Filters and columns as measurements() takes them; no id column unless asked for.
    source_ids = whole["source_id"].drop_duplicates().head(3).tolist()
    lo, hi = float(whole["mjd"].quantile(0.2)), float(whole["mjd"].quantile(0.8))
    kwargs = {
        "source_ids": source_ids,
        "start_mjd": lo,
        "end_mjd": hi,
        "columns": ["source_id", "mjd", "flux_jy"],
    }
    expected = await client.sources.measurements(**kwargs)
    got = [b async for b in client.sources.iter_measurements(batch_rows=7, **kwargs)]
    assert all(list(b.columns) == ["source_id", "mjd", "flux_jy"] for b in got)
    pd.testing.assert_frame_equal(pd.concat(got, ignore_index=True), expected)
    for bad in (0, -1, 10**8, 2.5, True):
        with pytest.raises(ValidationError, match="batch_rows"):
            [b async for b in client.sources.iter_measurements(batch_rows=bad)]  # type: ignore[arg-type]


async def test_rows_written_while_iterating_are_left_for_the_next_read(
    site: DemoSite, tmp_path: Path
) -> None:
    copy = tmp_path / "products.sqlite3"
    with sqlite3.connect(site.products_db) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    async with AsyncClient(products_db=copy) as client:
        before = len(await client.sources.measurements())
        seen = 0
        async for batch in client.sources.iter_measurements(batch_rows=1000):
            if seen == 0:  # the pipeline appends while we read: those rows have higher ids
                with sqlite3.connect(copy) as writer:
                    writer.execute(
                        "INSERT INTO photometry (source_id, image_path, ra_deg, dec_deg, peak_jyb, measured_at, mjd) "
                        "SELECT source_id, image_path, ra_deg, dec_deg, peak_jyb, measured_at, mjd FROM photometry "
                        "LIMIT 500"
                    )
            seen += len(batch)
        assert seen == before
        assert len(await client.sources.measurements()) == before + 500


async def test_export_parquet_and_csv_read_back_as_the_frame(client: AsyncClient, tmp_path: Path) -> None:
    expected = await client.sources.measurements()
    result = await client.sources.export(tmp_path / "phot.parquet", batch_rows=900, progress=False)
    assert result.rows == len(expected) and result.format == "parquet" and result.bytes > 0
    pd.testing.assert_frame_equal(pd.read_parquet(result.path), expected)
    manifest = json.loads(result.manifest.read_text())
    assert manifest["rows"] == len(expected) and manifest["what"] == "photometry"
    assert "FROM photometry" in manifest["query"] and isinstance(manifest["data_version"], int)
    assert manifest["toolkit_version"] and manifest["written_at"].endswith("+00:00")
    assert not [name for name in os.listdir(tmp_path) if "partial" in name]
    some = await client.sources.export(
        tmp_path / "some.csv", columns=["source_id", "mjd", "flux_jy"], start_mjd=float(expected["mjd"].median()),
        progress=False,
    )  # fmt: skip
    frame = pd.read_csv(some.path)
    assert list(frame.columns) == ["source_id", "mjd", "flux_jy"] and some.rows == len(frame)
    assert len(frame) == int((expected["mjd"] >= expected["mjd"].median()).sum())
    with pytest.raises(ValidationError, match="overwrite=True"):
        await client.sources.export(tmp_path / "phot.parquet", progress=False)
    again = await client.sources.export(
        tmp_path / "phot.parquet", overwrite=True, columns=["id"], progress=False
    )
    assert pd.read_parquet(again.path).columns.tolist() == ["id"]
    for path, kwargs, error in (
        (tmp_path / "x.txt", {}, ValidationError),
        (tmp_path / "x.csv", {"format": "xlsx"}, ValidationError),
        (tmp_path / "x.parquet", {"format": "csv"}, ValidationError),
        (tmp_path / "nowhere" / "x.csv", {}, FileNotAccessibleError),
        (tmp_path, {}, ValidationError),
    ):
        with pytest.raises(error):
            await client.sources.export(path, progress=False, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("area", "filters"),
    [("images", {}), ("images", {"type": ["pbcor", "dirty"]}), ("ms", {}), ("ms", {"search": "T1"}),
     ("jobs", {}), ("jobs", {"status": "completed"})],
)  # fmt: skip
async def test_listing_exports_read_back_as_the_list(
    client: AsyncClient, tmp_path: Path, area: str, filters: dict[str, object]
) -> None:
    """images, ms and jobs exports walk keyset pages (7 rows each here) and read back as list() gives them."""
    reader = getattr(client, area)
    expected = await reader.list(**filters)
    result = await reader.export(tmp_path / f"{area}.parquet", batch_rows=7, progress=False, **filters)
    assert result.rows == len(expected) > 7 * 3  # several pages
    pd.testing.assert_frame_equal(pd.read_parquet(result.path), expected)
    manifest = json.loads(result.manifest.read_text())
    assert manifest["what"] == area and manifest["rows"] == len(expected) and manifest["filters"] == filters
    assert "ORDER BY" in manifest["query"] and manifest["order"].endswith("descending")
    as_csv = await reader.export(tmp_path / f"{area}.csv", progress=False, **filters)
    frame = pd.read_csv(as_csv.path)
    assert frame.columns.tolist() == expected.columns.tolist() and len(frame) == len(expected)
    assert frame.iloc[:, 0].astype(str).tolist() == expected.iloc[:, 0].astype(str).tolist()


async def test_listing_exports_refuse_what_cannot_work(client: AsyncClient, tmp_path: Path) -> None:
    for kwargs, match in (
        ({"colour": "red"}, "unknown filter"),
        ({"type": "nonsense"}, "unknown type"),
        ({"batch_rows": 0}, "batch_rows"),
        ({"batch_rows": 1001}, "batch_rows"),
        ({"batch_rows": "7"}, "batch_rows"),
        ({"format": "xlsx"}, "format"),
    ):
        with pytest.raises(ValidationError, match=match):
            await client.images.export(tmp_path / "x.parquet", progress=False, **kwargs)
    assert not os.listdir(tmp_path)  # nothing written, not even a partial file
    none = await client.images.export(tmp_path / "none.parquet", search="no such path", progress=False)
    empty = pd.read_parquet(none.path)
    assert none.rows == 0 and empty.empty
    assert empty.columns.tolist() == (await client.images.list(limit=1)).columns.tolist()


def test_blocking_iterator_and_cli_export(
    site: DemoSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Client(**site.settings_kwargs()) as client:
        batches = list(client.sources.iter_measurements(batch_rows=1000, columns=["id"]))
        assert sum(map(len, batches)) == len(client.sources.measurements(columns=["id"]))
    for name, value in site.env.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    target = tmp_path / "cli.parquet"
    assert main(["export", "photometry", str(target), "--columns", "source_id,mjd", "-q"], out=out) == 0
    assert "wrote" in out.getvalue() and (tmp_path / "cli.parquet.manifest.json").exists()
    assert pd.read_parquet(target).columns.tolist() == ["source_id", "mjd"]
    assert main(["export", "photometry", str(target), "-q"], out=io.StringIO()) == 1  # exists: refused
    with Client(**site.settings_kwargs()) as client:
        failed = client.jobs.list(status="failed")
        pbcor = client.images.list(type="pbcor")
    jobs_file, images_file = tmp_path / "jobs.csv", tmp_path / "images.parquet"
    assert main(["export", "jobs", str(jobs_file), "--status", "failed", "-q"], out=io.StringIO()) == 0
    assert pd.read_csv(jobs_file)["id"].tolist() == failed["id"].tolist()
    assert main(["export", "images", str(images_file), "--type", "pbcor", "-q"], out=io.StringIO()) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(images_file), pbcor)
    assert main(["export", "ms", str(tmp_path / "ms.txt"), "-q"], out=io.StringIO()) == 1  # no such format


lightcurve_absent_seed = ["snr", "local_rms", "rms_jy", "sep_from_center_deg", "quality_flag", "flags"]


def test_seed_era_schema(tmp_path: Path) -> None:
    site = build_demo_site(tmp_path / "seed", schema="seed")
    with sqlite3.connect(f"file:{site.products_db}?mode=ro", uri=True) as conn:
        info = conn.execute("PRAGMA table_info(photometry)").fetchall()
    columns = [row[1] for row in info]
    assert columns == [
        "id", "source_id", "image_path", "ra_deg", "dec_deg", "nvss_flux_mjy", "peak_jyb", "peak_err_jyb",
        "flux_jy", "flux_err_jy", "normalized_flux_jy", "normalized_flux_err_jy", "measured_at", "mjd",
        "mosaic_path",
    ]  # fmt: skip
    assert {row[1] for row in info if row[3]} == {
        "image_path",
        "ra_deg",
        "dec_deg",
        "peak_jyb",
        "measured_at",
    }
    with Client(**site.settings_kwargs()) as client:
        frame = client.sources.measurements()
        assert frame["snr"].isna().all() and len(frame) > 0  # a column the seed era lacks: there, as NA
        source_id = str(frame["source_id"].iloc[0])
        curve = client.sources.lightcurve(source_id)
        # Every light-curve column, in place and typed, though the query selects only the seed era's own
        mine = frame[frame["source_id"] == source_id].sort_values(["mjd", "id"], ignore_index=True)
        assert list(curve.columns) == lightcurve_columns() and len(curve) == len(mine) > 0
        assert {c: str(t) for c, t in curve.dtypes.items()} == {
            c: str(frames.dtype_for(LIGHTCURVE_KINDS[c])) for c in curve.columns
        }
        assert curve[lightcurve_absent_seed].isna().all().all()
        pd.testing.assert_series_equal(curve["id"], mine["id"])
        pd.testing.assert_series_equal(curve["measured_at"], mine["measured_at"])
        pd.testing.assert_series_equal(curve["peak_jyb"], mine["peak_jyb"])
        assert len(client.sources.variability()) > 0 and len(client.qa.sources()) > 0
        assert client.jobs.list(limit=1)["run_id"].notna().all()  # the other tables are the newer ones


async def test_measurements_read_in_two_halves_equal_one_read(
    any_site: DemoSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two id halves read at once and joined as Arrow give the frame of one read, with filters too."""
    from toolkit.domains import sources

    async with AsyncClient(**any_site.settings_kwargs()) as client:
        lo = float((await client.sources.measurements(columns=["mjd"]))["mjd"].median())
        calls: list[dict[str, Any]] = [{}, {"start_mjd": lo, "columns": ["source_id", "flux_jy", "mjd"]}]
        for kwargs in calls:
            monkeypatch.setattr(sources, "SPLIT_MEASUREMENTS_ROWS", 10**12)
            whole = await client.sources.measurements(**kwargs)
            monkeypatch.setattr(sources, "SPLIT_MEASUREMENTS_ROWS", 1)
            halves = await client.sources.measurements(**kwargs)
            assert len(whole) > 0
            pd.testing.assert_frame_equal(halves, whole)


async def test_science_in_chunks_equals_the_whole_table_at_once(any_site: DemoSite) -> None:
    """A budget of 16 KiB reads 64 rows at a time: the demo's 3,200 in 50 chunks of whole sources."""
    async with (
        AsyncClient(**any_site.settings_kwargs()) as whole,
        AsyncClient(**any_site.settings_kwargs(), memory_budget=16 * 1024) as chunked,
    ):
        pd.testing.assert_frame_equal(await chunked.sources.variability(), await whole.sources.variability())
        lo = float((await whole.sources.measurements(columns=["mjd"]))["mjd"].median())
        pd.testing.assert_frame_equal(
            await chunked.sources.variability(start_mjd=lo, min_measurements=3),
            await whole.sources.variability(start_mjd=lo, min_measurements=3),
        )
        a, b = await chunked.sources.two_epoch(), await whole.sources.two_epoch()
        pd.testing.assert_frame_equal(a[0], b[0])
        pd.testing.assert_frame_equal(a[1], b[1])
        # past a quarter of the 16 KiB budget the pairs went to a temporary file and came back mapped
        assert is_mapped(a[1]["vs"].to_numpy()) and not is_mapped(b[1]["vs"].to_numpy())
        ours, theirs = await chunked.sources.eta_v(), await whole.sources.eta_v()
        assert (ours.eta_cutoff, ours.v_cutoff) == (theirs.eta_cutoff, theirs.v_cutoff)
        pd.testing.assert_frame_equal(ours.candidates, theirs.candidates)
        # Nothing in the window: an empty frame either way, not an error.
        empty = await chunked.sources.variability(start_mjd=99_999.0)
        assert empty.empty and list(empty.columns) == list((await whole.sources.variability()).columns)


async def test_two_epoch_a_group_at_a_time_adds_up_to_the_whole_answer(site: DemoSite) -> None:
    """iter_two_epoch hands over (candidate sources, their pairs) a group of whole sources at a time: with
    a 16 KiB budget (64 rows) the parts are many, each final, and together two_epoch's answer."""
    async with AsyncClient(**site.settings_kwargs(), memory_budget=16 * 1024) as client:
        sources, pairs = await client.sources.two_epoch()
        parts = [part async for part in client.sources.iter_two_epoch()]
        assert len(parts) > 3 and all(len(s) and len(p) for s, p in parts)
        for found, found_pairs in parts:  # each part's pairs are its sources' and no one else's
            assert set(found_pairs["source_id"]) == set(found["source_id"])
            assert found["n_pairs"].sum() == len(found_pairs) and "label" in found.columns
        ids = [s for found, _ in parts for s in found["source_id"]]
        assert len(ids) == len(set(ids)) == len(sources)  # every candidate once
        got = pd.concat([p for _, p in parts]).sort_values(["source_id", "mjd_a", "mjd_b"], kind="stable")
        pd.testing.assert_frame_equal(got.reset_index(drop=True), pairs)
        got_sources = pd.concat([s for s, _ in parts]).sort_values("source_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(got_sources, sources)
        unlabelled = [s async for s, _ in client.sources.iter_two_epoch(label=False)]
        assert all("label" not in s.columns for s in unlabelled)
        # No candidate anywhere: one empty part with the columns, not nothing and not an error.
        (nothing,) = [part async for part in client.sources.iter_two_epoch(vs=1e6)]
        assert nothing[0].empty and nothing[1].empty and list(nothing[1].columns) == list(pairs.columns)
        with pytest.raises(ValidationError, match="label"):
            [part async for part in client.sources.iter_two_epoch(label="yes")]  # type: ignore[arg-type]
    with Client(**site.settings_kwargs(), memory_budget=16 * 1024) as blocking:
        assert sum(len(p) for _, p in blocking.sources.iter_two_epoch()) == len(pairs)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(counts=st.lists(st.integers(1, 500), max_size=60), budget=st.integers(1, 2000))
def test_chunks_cover_every_source_once_in_order_and_stay_in_budget(counts: list[int], budget: int) -> None:
    from toolkit.science import chunk_sources

    named = [(f"J{k:05d}", n) for k, n in enumerate(counts)]  # in the database's order
    chunks = chunk_sources(named, budget)
    # the frame the database's GROUP BY gives, a row without an id in it, plans the same chunks
    ids = pd.array([None, *(name for name, _ in named)], dtype="str")
    assert chunk_sources(pd.DataFrame({"source_id": ids, "n": [7, *counts]}), budget) == chunks
    ids = [name for name, _ in named]
    covered = [s for first, last in chunks for s in ids[ids.index(first) : ids.index(last) + 1]]
    assert covered == ids  # every source once, in order, ranges not overlapping
    sizes = dict(named)
    for first, last in chunks:
        members = ids[ids.index(first) : ids.index(last) + 1]
        total = sum(sizes[s] for s in members)
        assert total <= budget or len(members) == 1  # only a source bigger than the budget stands alone


@settings(max_examples=50, deadline=None)
@given(counts=st.lists(st.integers(0, 400), max_size=40), budget=st.integers(1, 200_000))
def test_a_two_epoch_group_fits_the_budget_with_every_pair_a_candidate(
    counts: list[int], budget: int
) -> None:
    named = [(f"J{k:05d}", n) for k, n in enumerate(counts)]
    sizes = dict(named)
    groups = science.group_sources(science.pair_weighted(named), budget)
    assert [s for g in groups for s in g] == [name for name, _ in named]
    for group in groups:
        rows = sum(sizes[s] for s in group)
        pairs = sum(sizes[s] * (sizes[s] - 1) // 2 for s in group)
        cost = rows * science.BYTES_PER_ROW + pairs * science.BYTES_PER_PAIR
        assert cost <= budget * science.BYTES_PER_ROW or len(group) == 1


@pytest.mark.parametrize(("vs", "m"), [(4.3, 0.26), (0.5, 1e-9), (4.3, 1.9), (1e6, 0.26)])
async def test_two_epoch_reading_only_possible_sources_equals_every_pair_computed(
    client: AsyncClient, vs: float, m: float
) -> None:
    """two_epoch reads only the sources whose flux range and smallest error (one GROUP BY in the database)
    allow a pair above both thresholds: the answer equals computing every pair of every source."""
    sources, pairs = await client.sources.two_epoch(vs=vs, m=m)
    want_sources, want_pairs = science.two_epoch(await client.sources.measurements(), vs=vs, m=m)
    pd.testing.assert_frame_equal(pairs, want_pairs)
    pd.testing.assert_frame_equal(sources.drop(columns="label"), want_sources)
    assert (len(pairs) == 0) == (vs == 1e6)


FLUX = st.one_of(st.none(), st.floats(-5, 5), st.sampled_from([0.0, 1e-300, 1.0, 1.0 + 1e-15]))
ERROR = st.one_of(st.none(), st.floats(-1, 2), st.sampled_from([0.0, 1e-300, 1e-3]))


@settings(max_examples=300, deadline=None)
@given(
    sources=st.lists(st.lists(st.tuples(FLUX, ERROR), min_size=1, max_size=8), min_size=1, max_size=12),
    vs=st.sampled_from([1e-9, 0.5, 4.3, 50.0]),
    m=st.sampled_from([1e-9, 0.26, 1.0, 1.99]),
)
@example(sources=[[(0.0, 4.574607480339623e-238), (1e-300, 1e-300)]], vs=4.3, m=1e-9)  # squares underflow
def test_a_source_two_epoch_skips_has_no_candidate_pair(
    sources: list[list[tuple[float | None, float | None]]], vs: float, m: float
) -> None:
    rows = [
        {"source_id": f"S{k:02d}", "mjd": float(epoch), "flux_jy": flux, "flux_err_jy": err}
        for k, epochs in enumerate(sources)
        for epoch, (flux, err) in enumerate(epochs)
    ]
    frame = pd.DataFrame(rows, columns=["source_id", "mjd", "flux_jy", "flux_err_jy"])
    bounds = []  # what per_source_counts' GROUP BY gives: MIN/MAX skip NULL, errors where flux and e > 0
    for source_id, group in frame.groupby("source_id"):
        fluxes = group["flux_jy"].dropna()
        usable = group["flux_err_jy"][group["flux_jy"].notna() & (group["flux_err_jy"] > 0)]
        bounds.append((
            source_id, len(group), None if fluxes.empty else fluxes.min(), None if fluxes.empty else fluxes.max(),
            None if usable.empty else usable.min(),
        ))  # fmt: skip
    kept = {source_id for source_id, _ in science.two_epoch_possible(bounds, vs=vs, m=m)}
    _, pairs = science.two_epoch(frame, vs=vs, m=m)
    assert set(pairs["source_id"]) <= kept


def test_damaged_bounds_keep_the_source() -> None:
    """A bound the database compared as text, or an infinity, proves nothing: the source is read."""
    rows = [("a", 3, 1.0, "oops", 0.1), ("b", 3, float("-inf"), 1.0, 0.1), ("c", 3, 1.0, 1.0001, 0.1),
            ("d", 3, 1.0, 9.0, None), ("e", 1, 2.0, 2.0, 0.1), ("f", 2, None, None, None)]  # fmt: skip
    assert [s for s, _ in science.two_epoch_possible(rows, vs=4.3, m=0.26)] == ["a", "b", "f"]


async def test_variability_computed_by_the_database_equals_the_rows_computed_here(
    client: AsyncClient,
) -> None:
    """pairs=False: one two-pass GROUP BY in the database, no measurement read; the same metrics."""
    pair_columns = ["vs_max_abs", "m_max_abs"]
    here = (await client.sources.variability()).drop(columns=pair_columns)
    there = await client.sources.variability(pairs=False)
    pd.testing.assert_frame_equal(there, here, rtol=1e-9, atol=1e-15)
    lo = float((await client.sources.measurements(columns=["mjd"]))["mjd"].median())
    some = here["source_id"].tolist()[:5]
    for kwargs in ({"start_mjd": lo, "min_measurements": 3}, {"source_ids": some}, {"flux": "peak_jyb"}):
        pd.testing.assert_frame_equal(
            await client.sources.variability(pairs=False, **kwargs),  # type: ignore[arg-type]
            (await client.sources.variability(**kwargs)).drop(columns=pair_columns),  # type: ignore[arg-type]
            rtol=1e-9, atol=1e-15,
        )  # fmt: skip
    ours, theirs = await client.sources.eta_v(pairs=False), await client.sources.eta_v()
    assert ours.eta_cutoff == pytest.approx(theirs.eta_cutoff, rel=1e-9)
    assert ours.candidates["source_id"].tolist() == theirs.candidates["source_id"].tolist()
    with pytest.raises(ValidationError, match="pairs"):
        await client.sources.variability(pairs="no")  # type: ignore[arg-type]
    assert (await client.sources.variability(pairs=False, start_mjd=99_999.0)).empty


@settings(max_examples=60, deadline=None)
@given(
    base=st.sampled_from([1.0, 1e-3, 123.456, -2.5, 0.0]),
    offsets=st.lists(st.lists(st.floats(-1e-9, 1e-9), min_size=1, max_size=6), min_size=3, max_size=6),
    errors=st.sampled_from([0.01, 1e-12, -1.0, 0.0]),
)
def test_database_sums_keep_nearly_constant_fluxes_exact(
    base: float, offsets: list[list[float]], errors: float
) -> None:
    """The two passes hold in SQL too: nearly constant fluxes (where sums of squares cancel) give the V and
    eta the rows give, on a real SQLite table read by per_source_sums' own SQL."""
    from types import SimpleNamespace

    from toolkit.db.base import Catalog
    from toolkit.domains.sources import per_source_sums

    rows = [(f"S{k}", float(i), base + d, errors) for k, ds in enumerate(offsets) for i, d in enumerate(ds)]
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE photometry (id INTEGER PRIMARY KEY, source_id TEXT, mjd REAL, flux_jy REAL, flux_err_jy REAL)"
    )
    conn.executemany(
        "INSERT INTO photometry (source_id, mjd, flux_jy, flux_err_jy) VALUES (?, ?, ?, ?)", rows
    )
    catalog = Catalog.from_columns(
        [("photometry", c) for c in ("id", "source_id", "mjd", "flux_jy", "flux_err_jy")]
    )
    sql, params = per_source_sums(
        SimpleNamespace(catalog=catalog), ("flux_jy", "flux_err_jy"), None, None, None
    )  # type: ignore[arg-type]
    sums = pd.DataFrame(conn.execute(sql, params).fetchall(), columns=science.SUMS_COLUMNS)
    conn.close()
    frame = pd.DataFrame(rows, columns=["source_id", "mjd", "flux_jy", "flux_err_jy"])
    want = science.variability(frame, min_measurements=1).drop(columns=["vs_max_abs", "m_max_abs"])
    got = science.variability_from_sums(sums, min_measurements=1)
    pd.testing.assert_frame_equal(got, want, rtol=1e-7, atol=1e-300)
    # PostgreSQL's hash aggregate returns the sources in no order; the answer is the same, in id order
    shuffled = sums.iloc[::-1].reset_index(drop=True).astype({"source_id": object})
    pd.testing.assert_frame_equal(science.variability_from_sums(shuffled, min_measurements=1), got)
    fewer = science.variability(frame, min_measurements=3).drop(columns=["vs_max_abs", "m_max_abs"])
    kept = science.variability_from_sums(shuffled, min_measurements=3)
    pd.testing.assert_frame_equal(kept, fewer, rtol=1e-7, atol=1e-300)
    # The answer's columns are its own: built without copies, yet an edit touches one cell only
    for answer in (got, want):
        before = sums.copy()
        answer.loc[0, "eta"] = 99.0
        answer.loc[0, "mean_flux"] = 42.0
        assert answer.loc[0, "chi2_reduced"] != 99.0 and answer.loc[0, "mean_flux"] == 42.0
        pd.testing.assert_frame_equal(sums, before)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from("abc"),
            st.integers(0, 4),
            st.floats(-2, 5),
            st.one_of(st.floats(0.01, 0.5), st.sampled_from([0.0, -0.1])),
        ),
        max_size=40,
    )
)
def test_two_epoch_pairs_are_every_pair_a_double_loop_finds_in_order(
    rows: list[tuple[str, int, float, float]],
) -> None:
    """The pairs, kept as row numbers and built at the end, are the brute-force pairs in (source, mjd_a,
    mjd_b) order, equal MJDs in the order the epochs were measured."""
    frame = pd.DataFrame(rows, columns=["source_id", "mjd", "flux_jy", "flux_err_jy"]).astype({"mjd": float})
    _, pairs = science.two_epoch(frame, vs=1.0, m=0.1)
    want = []
    for source_id, group in frame.sort_values(["source_id", "mjd"], kind="stable").groupby("source_id"):
        epochs = list(group.itertuples(index=False))
        for i, a in enumerate(epochs):
            for b in epochs[i + 1 :]:
                sa, sb = (s if s > 0 else math.nan for s in (a.flux_err_jy, b.flux_err_jy))
                vs = (a.flux_jy - b.flux_jy) / math.sqrt(sa * sa + sb * sb)
                total = a.flux_jy + b.flux_jy
                m = math.nan if total == 0 else 2 * (a.flux_jy - b.flux_jy) / total
                if abs(vs) > 1.0 and abs(m) > 0.1:
                    want.append((source_id, a.mjd, b.mjd, a.flux_jy, b.flux_jy))
    want.sort(key=lambda p: (p[0], p[1], p[2]))  # stable: equal MJDs stay in epoch order
    assert [
        tuple(r) for r in pairs[["source_id", "mjd_a", "mjd_b", "flux_a", "flux_b"]].itertuples(index=False)
    ] == want


async def test_a_tagged_export_keeps_the_tag_as_it_was_when_it_began(site: DemoSite, tmp_path: Path) -> None:
    """The tag filter is resolved once: every page keeps those images, even when the tag moves meanwhile,
    and the export equals list(tag=...) as it was at the start."""
    async with AsyncClient(**{**site.settings_kwargs(), "notes_db": tmp_path / "notes.sqlite"}) as client:
        ids = (await client.images.list(limit=30))["id"].tolist()
        for image_id in ids:
            await client.notes.tag(("image", int(image_id)), "rfi")
        expected = await client.images.list(tag="rfi")
        assert len(expected) == 30
        pages: list[int] = []
        original = client.images.page

        async def page_then_untag(*args: Any, **kwargs: Any) -> Any:
            found = await original(*args, **kwargs)
            pages.append(len(found))
            if len(pages) == 1:  # after the first page, the tag leaves the last ten images
                for image_id in ids[-10:]:
                    await client.notes.untag(("image", int(image_id)), "rfi")
            return found

        client.images.page = page_then_untag  # type: ignore[method-assign]
        result = await client.images.export(tmp_path / "rfi.parquet", tag="rfi", batch_rows=7, progress=False)
        client.images.page = original  # type: ignore[method-assign]
        assert len(pages) == 5 and result.rows == 30
        got = pd.read_parquet(result.path)
        assert got["id"].tolist() == expected["id"].tolist()
        assert len(await client.images.list(tag="rfi")) == 20  # the untagging did happen
