"""The async client's public contract, on the newer and the older-schema demo sites alike.

Expected values come from plain sqlite3 queries of the same files, never from constants.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest

from toolkit import (
    AsyncClient,
    CalTable,
    Image,
    Job,
    MeasurementSet,
    RecordNotFoundError,
    Source,
    Stats,
    ValidationError,
)
from toolkit.demo import DemoSite
from toolkit.domains import listing as fetch_listing_module
from toolkit.runids import run_id_for_ms
from toolkit.schema import column_names

from ..conftest import source_db


@contextmanager
def raw(path: Any) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        yield conn


def scalar(path: Any, sql: str, *params: Any) -> Any:
    with raw(path) as conn:
        return conn.execute(sql, params).fetchone()[0]


def stage_grade(stage: str | None) -> str | None:
    if stage is None:
        return None
    return (
        "good"
        if stage in ("imaged", "mosaicked", "cataloged")
        else "warn"
        if stage == "calibrated"
        else "fail"
    )


# ------------------------------------------------------------------------------------------------ images
async def test_images_list_has_every_column_and_dtypes_on_both_schemas(client: AsyncClient) -> None:
    frame = await client.images.list()
    assert list(frame.columns) == [*column_names("images"), "qa_grade", "run_id", "tags", "n_comments"]
    assert str(frame["tags"].dtype) == "str" and frame["n_comments"].dtype == "Int64"
    assert len(frame) == scalar(source_db(client), "SELECT COUNT(*) FROM images")
    assert str(frame["created_at"].dtype) == "datetime64[us, UTC]"
    assert frame["id"].dtype == "Int64"
    assert frame["pbcor"].dtype == "boolean"
    assert frame["noise_jy"].dtype == "float64"
    assert str(frame["path"].dtype) == "str"
    # newest first
    assert frame["created_at"].is_monotonic_decreasing


async def test_older_schema_columns_are_present_and_na(older_site: DemoSite) -> None:
    async with AsyncClient(**older_site.settings_kwargs()) as client:
        frame = await client.images.list(limit=20)
        assert frame["dynamic_range"].isna().all()
        assert frame["freq_ghz"].dtype == "float64"
        assert frame["imsize_x"].dtype == "Int64"
        assert frame["field_name"].isna().all()


async def test_images_qa_grade_follows_ms_stage_and_run_id_is_derived_or_stored(client: AsyncClient) -> None:
    frame = await client.images.list()
    with raw(source_db(client)) as conn:
        stages = dict(conn.execute("SELECT path, stage FROM ms_index").fetchall())
    for row in frame.itertuples():
        ms_path = None if pd.isna(row.ms_path) else row.ms_path
        assert (None if pd.isna(row.qa_grade) else row.qa_grade) == stage_grade(stages.get(ms_path))
        if ms_path is None:
            assert pd.isna(row.run_id)
        else:
            assert row.run_id == run_id_for_ms(ms_path)  # the demo's jobs store the pipeline's derived ids
    assert {"good", "warn", "fail"} & set(frame["qa_grade"].dropna()) >= {"good"}


async def test_images_filters(client: AsyncClient) -> None:
    db = source_db(client)
    pbcor = await client.images.list(type="pbcor")
    assert len(pbcor) == scalar(db, "SELECT COUNT(*) FROM images WHERE type = 'pbcor'") > 0
    both = await client.images.list(type=["pbcor", "mosaic"])
    assert set(both["type"]) == {"pbcor", "mosaic"}
    ms_path = str(pbcor["ms_path"].iloc[0])
    of_ms = await client.images.list(ms_path=ms_path)
    assert set(of_ms["ms_path"]) == {ms_path} and len(of_ms) >= 2
    cut = pd.Timestamp(pbcor["created_at"].median())
    since = await client.images.list(since=cut.isoformat())
    until = await client.images.list(until=cut.to_pydatetime())
    assert (since["created_at"] >= cut).all() and (until["created_at"] <= cut).all()
    assert len(since) + len(until) == len(await client.images.list()) + int(
        (since["created_at"] == cut).sum()
    )
    page1 = await client.images.list(limit=7)
    page2 = await client.images.list(limit=7, offset=7)
    assert len(page1) == len(page2) == 7
    assert not set(page1["id"]) & set(page2["id"])


@pytest.mark.parametrize(
    ("area", "filters"),
    [("images", {}), ("images", {"type": ["pbcor", "mosaic"]}), ("ms", {}), ("ms", {"stage": "imaged"})],
)
async def test_long_listings_read_in_two_halves_equal_one_read(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch, area: str, filters: dict[str, Any]
) -> None:
    """The demo site is below the split threshold, so lower it: the parallel halves must give the same frame."""
    listing = getattr(client, area).list
    monkeypatch.setattr(client.cache, "max_bytes", 0)  # every call reads: this test counts the reads
    single = await listing(**filters)
    monkeypatch.setattr(fetch_listing_module, "SPLIT_MIN_ROWS", 1)
    db = await client._connections.products()
    reads: list[int] = []
    read_parts = db.fetch_frame_parts

    async def counted(parts: Any, *args: Any, **kwargs: Any) -> pd.DataFrame:
        reads.append(len(parts))
        return await read_parts(parts, *args, **kwargs)

    monkeypatch.setattr(db, "fetch_frame_parts", counted)
    split = await listing(**filters)
    assert reads == [2] and len(single) > 1
    pd.testing.assert_frame_equal(split, single)


async def test_images_unknown_type_names_the_known_ones(client: AsyncClient) -> None:
    with pytest.raises(ValidationError, match=r"'pbcorr'.*pbcor"):
        await client.images.list(type="pbcorr")


async def test_images_get_by_id_and_path(client: AsyncClient) -> None:
    frame = await client.images.list(limit=3)
    first = frame.iloc[0]
    image = await client.images.get(int(first["id"]))
    assert isinstance(image, Image)
    assert (
        image.path == first["path"]
        and image.qa_grade == first["qa_grade"]
        and image.run_id == first["run_id"]
    )
    assert image == await client.images.get(str(first["path"]))
    assert image.created_at is not None and image.created_at.tzinfo is not None
    with pytest.raises(RecordNotFoundError) as info:
        await client.images.get(10**9)
    assert info.value.entity == "image" and info.value.identifier == 10**9
    with pytest.raises(RecordNotFoundError):
        await client.images.get("/no/such/image.fits")


# ---------------------------------------------------------------------------------------- measurement sets
async def test_ms_list_filters_by_stage_and_status(client: AsyncClient) -> None:
    db = source_db(client)
    calibrated = await client.ms.list(stage="calibrated")
    assert len(calibrated) == scalar(db, "SELECT COUNT(*) FROM ms_index WHERE stage = 'calibrated'") > 0
    assert set(calibrated["qa_grade"]) == {"warn"}
    stuck_before_imaging = await client.ms.list(
        stage=["ingested", "converted", "calibrated"], status="in_progress"
    )
    assert set(stuck_before_imaging["status"]) == {"in_progress"}
    assert list(stuck_before_imaging.columns)[: len(column_names("ms_index"))] == list(
        column_names("ms_index")
    )
    with pytest.raises(ValidationError, match="stage"):
        await client.ms.list(stage="imagined")
    assert (await client.ms.list(stage="ingested", status="completed")).empty  # a valid, empty answer


async def test_ms_get_prefers_pointing_and_lists_cal_tables_in_order(client: AsyncClient) -> None:
    db = source_db(client)
    with raw(db) as conn:
        path, ra, pra, mid = conn.execute(
            "SELECT path, ra_deg, pointing_ra_deg, mid_mjd FROM ms_index "
            "WHERE stage = 'imaged' AND pointing_ra_deg IS NOT NULL LIMIT 1"
        ).fetchone()
        n_images = conn.execute("SELECT COUNT(*) FROM images WHERE ms_path = ?", (path,)).fetchone()[0]
    ms = await client.ms.get(path)
    assert isinstance(ms, MeasurementSet)
    assert ms.ra_deg == pra != ra
    assert ms.qa_grade == "good" and ms.run_id == run_id_for_ms(path)
    assert len(ms.images) == n_images > 0
    assert ms.cal_tables, "an imaged MS has calibration tables in force"
    assert [t.order_index for t in ms.cal_tables] == sorted(t.order_index or 0 for t in ms.cal_tables)
    assert len({t.set_name for t in ms.cal_tables}) == 1
    assert ms.primary_cal_table == ms.cal_tables[0]
    for table in ms.cal_tables:
        assert table.status != "failed"
        assert table.valid_start_mjd is not None and table.valid_end_mjd is not None
        assert table.valid_start_mjd <= mid <= table.valid_end_mjd
    with pytest.raises(RecordNotFoundError):
        await client.ms.get("/stage/dsa110-contimg/ms/nope.ms")


async def test_ms_without_pointing_falls_back_to_phase_centre(newer_client: AsyncClient) -> None:
    with raw(source_db(newer_client)) as conn:
        path, ra, dec = conn.execute(
            "SELECT path, ra_deg, dec_deg FROM ms_index WHERE pointing_ra_deg IS NULL LIMIT 1"
        ).fetchone()
    ms = await newer_client.ms.get(path)
    assert (ms.ra_deg, ms.dec_deg) == (ra, dec)


# ------------------------------------------------------------------------------------------------ sources
async def test_sources_list_and_get(client: AsyncClient) -> None:
    db = source_db(client)
    frame = await client.sources.list()
    assert len(frame) == scalar(db, "SELECT COUNT(DISTINCT source_id) FROM photometry")
    assert list(frame.columns) == [
        "source_id",
        "name",
        "ra_deg",
        "dec_deg",
        "n_measurements",
        "first_mjd",
        "last_mjd",
        "mean_flux_jy",
        "max_flux_jy",
        "nvss_flux_mjy",
        "tags",
        "n_comments",
        "label",
    ]
    sid = str(frame["source_id"].iloc[3])
    n = scalar(db, "SELECT COUNT(*) FROM photometry WHERE source_id = ?", sid)
    assert int(frame["n_measurements"].iloc[3]) == n
    assert (await client.sources.list(min_detections=n + 1)).empty
    assert len(await client.sources.list(min_detections=n)) == len(frame)
    source = await client.sources.get(sid)
    assert isinstance(source, Source)
    assert source.n_measurements == n
    assert len(source.images) == scalar(
        db, "SELECT COUNT(DISTINCT image_path) FROM photometry WHERE source_id = ?", sid
    )
    assert source.max_flux_jy == pytest.approx(float(frame["max_flux_jy"].iloc[3]))
    with pytest.raises(RecordNotFoundError):
        await client.sources.get("J999999+999999")


async def test_lightcurve_is_ordered_and_falls_back_to_peak(client: AsyncClient) -> None:
    db = source_db(client)
    with raw(db) as conn:
        sid, peak, peak_err = conn.execute(
            "SELECT source_id, peak_jyb, peak_err_jyb FROM photometry WHERE flux_jy IS NULL LIMIT 1"
        ).fetchone()
    curve = await client.sources.lightcurve(sid)
    assert curve["mjd"].is_monotonic_increasing
    assert curve["flux_jy"].notna().all(), "flux falls back to peak where flux is null"
    fallback = curve[curve["flux_from_peak"]]
    assert len(fallback) >= 1
    assert peak in fallback["flux_jy"].tolist()
    assert peak_err in fallback["flux_err_jy"].tolist()
    mid = float(curve["mjd"].median())
    later = await client.sources.lightcurve(sid, start_mjd=mid)
    assert (later["mjd"] >= mid).all() and 0 < len(later) < len(curve)
    assert (await client.sources.lightcurve(sid, start_mjd=1.0, end_mjd=2.0)).empty  # known source, no rows
    with pytest.raises(RecordNotFoundError):
        await client.sources.lightcurve("nobody")
    with pytest.raises(ValidationError):
        await client.sources.lightcurve(sid, start_mjd=mid, end_mjd=mid - 1)


async def test_measurements_bulk_frame(client: AsyncClient) -> None:
    db = source_db(client)
    everything = await client.sources.measurements()
    assert len(everything) == scalar(db, "SELECT COUNT(*) FROM photometry")
    assert list(everything.columns) == list(column_names("photometry"))
    assert str(everything["measured_at"].dtype) == "datetime64[us, UTC]"
    assert everything["mjd"].dtype == "float64"
    ids = sorted(set(everything["source_id"]))[:3]
    some = await client.sources.measurements(source_ids=ids, columns=["source_id", "mjd", "flux_jy"])
    assert list(some.columns) == ["source_id", "mjd", "flux_jy"]
    assert set(some["source_id"]) == set(ids)
    assert len(some) == int(everything["source_id"].isin(ids).sum())
    window = await client.sources.measurements(start_mjd=float(everything["mjd"].median()))
    assert 0 < len(window) < len(everything)
    with pytest.raises(ValidationError, match="flux_jyy"):
        await client.sources.measurements(columns=["flux_jyy"])
    with pytest.raises(ValidationError):
        await client.sources.measurements(source_ids="J000000+000000")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------- jobs
async def test_jobs_list_and_get(client: AsyncClient) -> None:
    db = source_db(client)
    frame = await client.jobs.list()
    has_jobs = scalar(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'jobs'") == 1
    expected = scalar(db, "SELECT COUNT(*) FROM jobs" if has_jobs else "SELECT COUNT(*) FROM ms_index")
    assert len(frame) == expected
    assert set(frame["derived"]) == {not has_jobs}
    assert frame["run_id"].notna().all()
    for column in ("created_at", "started_at", "finished_at"):
        assert str(frame[column].dtype) == "datetime64[us, UTC]"
    failed = await client.jobs.list(status="failed")
    assert len(failed) > 0 and set(failed["status"]) == {"failed"}
    finished = frame.dropna(subset=["started_at", "finished_at"]).iloc[0]
    job = await client.jobs.get(str(finished["run_id"]))
    assert isinstance(job, Job)
    assert job.ms_path == finished["ms_path"]
    assert job.duration is not None and job.duration > timedelta(0)
    assert job.duration == job.finished_at - job.started_at  # type: ignore[operator]
    assert job == await client.jobs.get(int(finished["id"]))
    with pytest.raises(RecordNotFoundError):
        await client.jobs.get("job-1999-01-01-000000")
    with pytest.raises(RecordNotFoundError):
        await client.jobs.get("not-a-run-id")


async def test_job_params_and_artifacts_are_parsed(newer_client: AsyncClient) -> None:
    frame = await newer_client.jobs.list(status="completed", limit=1)
    job = await newer_client.jobs.get(str(frame["run_id"].iloc[0]))
    assert isinstance(job.params, dict) and job.params["imsize"] == 2400
    assert isinstance(job.artifacts, dict)
    assert job.output_image in job.artifacts["images"]
    assert not job.derived


async def test_job_found_by_derived_run_id_when_stored_id_is_missing(tmp_path: Any, site: DemoSite) -> None:
    """A jobs table whose run_id is NULL still answers to the run id derived from the MS name."""
    db = tmp_path / "products.sqlite3"
    db.write_bytes(site.products_db.read_bytes())
    with closing(sqlite3.connect(db)) as conn, conn:
        ms_path = conn.execute("SELECT ms_path FROM jobs WHERE status = 'completed' LIMIT 1").fetchone()[0]
        conn.execute("UPDATE jobs SET run_id = NULL WHERE ms_path = ?", (ms_path,))
    async with AsyncClient(products_db=db) as client:
        job = await client.jobs.get(str(run_id_for_ms(ms_path)))
        assert job.ms_path == ms_path and job.run_id == run_id_for_ms(ms_path)


# ---------------------------------------------------------------------------------------------- cal tables
async def test_cal_list_filters_and_get(client: AsyncClient) -> None:
    registry = source_db(client, "cal_registry_db")
    everything = await client.cal.list()
    assert len(everything) == scalar(registry, "SELECT COUNT(*) FROM caltables")
    active = await client.cal.list(status="active")
    assert set(active["status"]) == {"active"}
    bp = await client.cal.list(table_type="BP")
    assert set(bp["table_type"]) == {"BP"}
    mid = float((active["valid_start_mjd"].iloc[0] + active["valid_end_mjd"].iloc[0]) / 2)
    in_force = await client.cal.list(valid_at_mjd=mid, status="active")
    assert ((in_force["valid_start_mjd"] <= mid) & (in_force["valid_end_mjd"] >= mid)).all()
    assert len(in_force) == 7
    table = await client.cal.get(str(in_force["path"].iloc[0]))
    assert isinstance(table, CalTable)
    assert isinstance(table.quality_metrics, dict) and "snr_median" in table.quality_metrics
    assert isinstance(table.solver_params, dict)
    with pytest.raises(RecordNotFoundError):
        await client.cal.get("/nope.kcal")
    with pytest.raises(ValidationError, match="'Q'"):
        await client.cal.list(table_type="Q")


async def test_caltables_inside_the_products_database(tmp_path: Any) -> None:
    from toolkit.demo import build_demo_site

    inside = build_demo_site(tmp_path, calibration_in_products=True)
    assert inside.cal_registry_db is None
    async with AsyncClient(products_db=inside.products_db) as client:
        assert len(await client.cal.list()) > 0
        imaged = await client.ms.list(stage="imaged", limit=1)
        assert (await client.ms.get(str(imaged["path"].iloc[0]))).cal_tables
        assert (await client.stats()).cal_tables_total == len(await client.cal.list())


# -------------------------------------------------------------------------------------------- stats and sql
async def test_stats_match_the_database(client: AsyncClient) -> None:
    db = source_db(client)
    stats = await client.stats()
    assert isinstance(stats, Stats)
    with raw(db) as conn:
        by_stage = dict(conn.execute("SELECT stage, COUNT(*) FROM ms_index GROUP BY stage").fetchall())
    assert stats.ms_by_stage == by_stage and stats.ms_total == sum(by_stage.values())
    assert stats.images_total == scalar(db, "SELECT COUNT(*) FROM images")
    assert stats.photometry_rows == scalar(db, "SELECT COUNT(*) FROM photometry")
    assert stats.unique_sources == scalar(db, "SELECT COUNT(DISTINCT source_id) FROM photometry")
    assert stats.jobs_total == len(await client.jobs.list())
    assert stats.jobs_by_status == (await client.jobs.list())["status"].value_counts().to_dict()
    assert stats.cal_tables_total == scalar(
        source_db(client, "cal_registry_db"), "SELECT COUNT(*) FROM caltables"
    )
    assert len(stats.recent_images) == 10
    assert stats.recent_images["id"].tolist() == (await client.images.list(limit=10))["id"].tolist()
    assert stats.to_dict()["recent_images"][0]["id"] == int(stats.recent_images["id"].iloc[0])


async def test_sql_escape_hatch(client: AsyncClient) -> None:
    frame = await client.sql("SELECT id, created_at, type FROM images WHERE type = ? ORDER BY id", ["pbcor"])
    assert len(frame) == scalar(source_db(client), "SELECT COUNT(*) FROM images WHERE type='pbcor'")
    assert str(frame["created_at"].dtype) == "datetime64[us, UTC]"
    empty = await client.sql("SELECT id, type FROM images WHERE 1 = 0")
    assert list(empty.columns) == ["id", "type"] and empty.empty


# --------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.images.list(limit=-1), "limit"),
        (lambda c: c.images.list(offset=-5), "offset"),
        (lambda c: c.images.list(limit=True), "limit"),
        (lambda c: c.images.list(since="last tuesday-ish"), "since"),
        (lambda c: c.images.list(since="2025-10-06", until="2025-10-05"), "before"),
        (lambda c: c.jobs.list(until=42), "until"),
        (lambda c: c.ms.list(since="not a date"), "since"),
        (lambda c: c.sources.list(min_detections=-1), "min_detections"),
        (lambda c: c.cal.list(valid_at_mjd=float("nan")), "valid_at_mjd"),
        (lambda c: c.images.get(3.5), "integer id"),
        (lambda c: c.sql(""), "query"),
    ],
)
async def test_bad_arguments_raise_validation_errors(
    newer_client: AsyncClient, call: Any, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        await call(newer_client)
