"""What the pipeline's REST API answered, answered by the toolkit (issue 18), on real demo files."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.time import Time

import toolkit.errors as errors_module
from toolkit import AsyncClient, RecordNotFoundError, ToolkitError, ValidationError
from toolkit.cli import main
from toolkit.demo import DemoSite
from toolkit.domains import logs as logs_module
from toolkit.mjd import unix_to_mjd


# ------------------------------------------------------------------------------------------------ images
async def test_a_string_of_digits_names_an_image_by_id(client: AsyncClient) -> None:
    first = (await client.images.list(limit=1)).iloc[0]
    by_int = await client.images.get(int(first["id"]))
    assert await client.images.get(str(first["id"])) == by_int
    assert await client.images.get(by_int.path) == by_int
    assert (await client.qa.image(str(first["id"]))).image_id == by_int.id
    with pytest.raises(RecordNotFoundError):
        await client.images.get("999999999")
    with pytest.raises(ValidationError, match="64-bit"):
        await client.images.get("9" * 40)
    with pytest.raises(RecordNotFoundError):  # not digits: a path, and there is none
        await client.images.get("１２３")
    # The same rule wherever an image or a job is named by id.
    chain = await client.provenance(str(first["id"]))
    assert chain.kind == "image" and chain.ms_path == by_int.ms_path
    jobs = (await client.jobs.list(limit=5)).dropna(subset=["id"])
    if len(jobs):  # the older schema's jobs are derived from MS and have no id
        job_id = int(jobs["id"].iloc[0])
        assert await client.jobs.get(str(job_id)) == await client.jobs.get(job_id)


# ------------------------------------------------------------------------------------------------ errors
def _error_classes() -> list[type[ToolkitError]]:
    return [c for c in vars(errors_module).values() if isinstance(c, type) and issubclass(c, ToolkitError)]


def test_every_error_has_its_own_stable_code_and_a_dict() -> None:
    classes = _error_classes()
    codes = [c.code for c in classes]
    assert len(classes) >= 12 and len(set(codes)) == len(codes), codes
    assert all(c.code.isidentifier() and c.code == c.code.lower() for c in classes)
    err = RecordNotFoundError("image", 12, "look elsewhere")
    data = err.to_dict()
    assert data["code"] == "record_not_found" and data["type"] == "RecordNotFoundError"
    assert data["entity"] == "image" and data["identifier"] == 12 and "look elsewhere" in data["message"]
    assert json.loads(json.dumps(data)) == data
    assert errors_module.QueryTimeoutError("slow").to_dict() == {
        "code": "query_timeout",
        "type": "QueryTimeoutError",
        "message": "slow",
    }


def test_cli_prints_errors_as_json_with_format_json(
    site: DemoSite, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in site.env.items():
        monkeypatch.setenv(name, value)
    code = main(["images", "--type", "nonsense", "--format", "json"], out=io.StringIO())
    err = capsys.readouterr().err
    assert code == 1
    payload = json.loads(err)["error"]
    assert payload["code"] == "validation_error" and "nonsense" in payload["message"]
    code = main(["images", "--type", "nonsense"], out=io.StringIO())
    assert code == 1 and capsys.readouterr().err.startswith("contimg: ValidationError:")


# ------------------------------------------------------------------------------------------------- stats
async def test_stats_counts_ms_without_a_stage_as_pending(site: DemoSite, tmp_path: Path) -> None:
    copy = tmp_path / "products.sqlite3"
    shutil.copy(site.products_db, copy)
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE ms_index SET stage = NULL WHERE rowid IN (SELECT rowid FROM ms_index LIMIT 3)")
    conn.close()
    before = datetime.now(UTC)
    async with AsyncClient(products_db=copy) as client:
        stats = await client.stats()
    assert stats.ms_by_stage["pending"] == 3 and "None" not in stats.ms_by_stage
    assert sum(stats.ms_by_stage.values()) == stats.ms_total
    assert stats.generated_at is not None and before <= stats.generated_at <= datetime.now(UTC)


# -------------------------------------------------------------------------------------------------- logs
@pytest.fixture
async def logclient(site: DemoSite, tmp_path: Path) -> AsyncIterator[tuple[AsyncClient, Path]]:
    folder = tmp_path / "logs"
    folder.mkdir()
    async with AsyncClient(products_db=site.products_db, log_dirs=[folder]) as client:
        yield client, folder


async def test_tail_counts_lines_and_read_returns_the_whole_log(
    logclient: tuple[AsyncClient, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, folder = logclient
    lines = [f"2026-12-01 00:00:{i % 60:02d} - toolkit.test - INFO - line {i}" for i in range(5_000)]
    (folder / "run-a.log").write_text("\n".join(lines) + "\n")
    (folder / "run-b.log").write_text("one\ntwo\nhalf-written")
    tail = await client.logs.tail("run-a", 10)
    assert tail.lines == lines[-10:] and tail.total_lines == 5_000 and tail.total_lines_note is None
    assert (await client.logs.tail("run-b", 10)).total_lines == 3
    whole = await client.logs.read("run-a")
    assert whole.lines == lines and whole.total_lines == 5_000
    assert whole.size == (folder / "run-a.log").stat().st_size
    assert (await client.logs.read("run-b")).lines == ["one", "two", "half-written"]
    with pytest.raises(ValidationError, match=r"above max_bytes=1,000.*logs\.tail.*logs\.grep.*logs\.frame"):
        await client.logs.read("run-a", max_bytes=1_000)
    for bad in (0, -1, 2**40, 1.5, True):
        with pytest.raises(ValidationError, match="max_bytes"):
            await client.logs.read("run-a", max_bytes=bad)  # type: ignore[arg-type]
    # Above the counting limit, the count is None and says why (the limit is lowered, the file is real).
    monkeypatch.setattr(logs_module, "COUNT_LIMIT", 1_000)
    big = await client.logs.tail("run-a", 5)
    assert big.lines == lines[-5:] and big.total_lines is None
    assert big.total_lines_note is not None and "1,000" in big.total_lines_note


# ----------------------------------------------------------------------------------------------- sources
async def test_lightcurve_bounds_take_mjds_datetimes_iso_strings_and_astropy_times(
    client: AsyncClient,
) -> None:
    source_id = str((await client.sources.list(min_detections=5, limit=1))["source_id"].iloc[0])
    whole = await client.sources.lightcurve(source_id)
    mjds = whole["mjd"].to_numpy()
    lo, hi = float(np.quantile(mjds, 0.25)), float(np.quantile(mjds, 0.75))
    expected = whole[(whole["mjd"] >= lo) & (whole["mjd"] <= hi)].reset_index(drop=True)

    def as_datetime(mjd: float) -> datetime:
        return datetime(1858, 11, 17, tzinfo=UTC) + timedelta(days=mjd)

    # A microsecond either side of the bounds: datetimes carry no finer time.
    lo_dt, hi_dt = as_datetime(lo) - timedelta(microseconds=1), as_datetime(hi) + timedelta(microseconds=1)
    forms = [
        {"start": lo, "end": hi},
        {"start_mjd": lo, "end_mjd": hi},
        {"start": lo_dt, "end": hi_dt},
        {"start": lo_dt.isoformat(), "end": hi_dt.isoformat()},
        {"start": pd.Timestamp(lo_dt), "end": pd.Timestamp(hi_dt)},
        {"start": Time(lo - 1e-9, format="mjd"), "end": Time(hi + 1e-9, format="mjd")},
    ]
    for bounds in forms:
        got = await client.sources.lightcurve(source_id, **bounds)
        pd.testing.assert_frame_equal(got, expected, obj=str(bounds))
    assert unix_to_mjd(lo_dt.timestamp()) == pytest.approx(lo, abs=1e-9)
    with pytest.raises(ValidationError, match="not both"):
        await client.sources.lightcurve(source_id, start=lo, start_mjd=lo)
    with pytest.raises(ValidationError, match="before"):
        await client.sources.lightcurve(source_id, start="2026-12-02", end="2026-12-01")
    with pytest.raises(ValidationError, match="one moment"):
        await client.sources.lightcurve(source_id, start=Time([lo, hi], format="mjd"))
    for bad in (True, float("nan"), "yesterday-ish", object()):
        with pytest.raises(ValidationError):
            await client.sources.lightcurve(source_id, start=bad)


async def test_variability_of_chosen_sources_and_the_api_columns(client: AsyncClient) -> None:
    every = await client.sources.variability()
    chosen = every["source_id"].iloc[[0, 3, len(every) - 1]].tolist()
    some = await client.sources.variability(source_ids=chosen)
    pd.testing.assert_frame_equal(
        some, every[every["source_id"].isin(chosen)].reset_index(drop=True), check_exact=False
    )
    # The API's columns, against pandas on the measurements themselves.
    frame = await client.sources.measurements(source_ids=chosen)
    std = frame["flux_jy"].groupby(frame["source_id"]).std(ddof=1)  # rows without a flux are left out
    np.testing.assert_allclose(
        some.set_index("source_id")["std_flux_jy"], std.loc[some["source_id"]], rtol=1e-9
    )
    weighted = frame[frame["flux_jy"].notna() & (frame["flux_err_jy"] > 0)]
    w = 1.0 / weighted["flux_err_jy"] ** 2
    by = weighted["source_id"]
    wmean = (w * weighted["flux_jy"]).groupby(by).sum() / w.groupby(by).sum()
    chi2 = (w * (weighted["flux_jy"] - weighted["source_id"].map(wmean)) ** 2).groupby(by).sum()
    dof = by.value_counts() - 1
    mine = some.set_index("source_id")
    np.testing.assert_allclose(mine["chi2"], chi2.loc[mine.index], rtol=1e-9)
    np.testing.assert_allclose(mine["chi2_reduced"], (chi2 / dof).loc[mine.index], rtol=1e-9)
    np.testing.assert_allclose(every["chi2_reduced"], every["eta"])
    assert (every["is_variable"] == (every["v"] > 0.1)).all() and every["is_variable"].any()
    with pytest.raises(RecordNotFoundError, match="no-such-source"):
        await client.sources.variability(source_ids=[chosen[0], "no-such-source"])
    with pytest.raises(ValidationError, match="single string"):
        await client.sources.variability(source_ids=chosen[0])
    # An id that has photometry but too few measurements is not an error: it is simply not in the frame.
    few = await client.sources.variability(source_ids=chosen, min_measurements=10**6)
    assert few.empty


async def test_sources_have_names_and_are_found_by_name_and_by_image(client: AsyncClient) -> None:
    listed = await client.sources.list(min_detections=3, limit=20)
    assert listed["name"].str.fullmatch(r"J\d{6}\.\d[+-]\d{6}\.\d").all()
    for row in listed.head(5).itertuples():
        assert designation_of(row.ra_deg, row.dec_deg) == row.name
        found = await client.sources.list(name=row.name)
        assert found["source_id"].tolist() == [row.source_id]
        # A coarser designation is a bigger box: it still holds the source.
        coarse = row.name[:7] + row.name[9:16]
        assert row.source_id in (await client.sources.list(name=coarse))["source_id"].tolist()
    source = await client.sources.get(str(listed["source_id"].iloc[0]))
    assert source.name == listed["name"].iloc[0]
    images = source.contributing_images
    assert list(images.columns) == ["image_id", "path", "ms_path", "qa_grade", "created_at", "mjd"]
    assert sorted(images["path"]) == sorted(source.images)
    assert images["mjd"].is_monotonic_increasing and source.latest_image_id == images["image_id"].iloc[-1]
    listed_images = (await client.images.list()).set_index("id")
    for row in images.head(3).itertuples():
        assert listed_images.loc[row.image_id, "path"] == row.path
        assert listed_images.loc[row.image_id, "ms_path"] == row.ms_path
        assert listed_images.loc[row.image_id, "qa_grade"] == row.qa_grade
    # By image: the sources with a measurement in it, by id, by a string of digits and by path.
    image_id, image_path = int(images["image_id"].iloc[0]), str(images["path"].iloc[0])
    frame = await client.sources.measurements(columns=["source_id", "image_path"])
    expected = sorted(frame.loc[frame["image_path"] == image_path, "source_id"].unique())
    for image in (image_id, str(image_id), image_path):
        assert sorted((await client.sources.list(image=image))["source_id"]) == expected
    for bad in ("J12+34", "J999999.9+000000.0", "x" * 100, 12):
        with pytest.raises(ValidationError):
            await client.sources.list(name=bad)  # type: ignore[arg-type]
    assert (await client.sources.list(name="J000000.0-000000.0")).empty


def designation_of(ra_deg: float, dec_deg: float) -> str:
    """The designation by astropy's own sexagesimal formatting, truncated (an independent reference)."""
    from astropy.coordinates import Angle

    ra = Angle(ra_deg, unit="deg").hms
    dec = Angle(abs(dec_deg), unit="deg").dms
    ra_tenths = int(ra.s * 10 + 1e-6)
    dec_tenths = int(dec.s * 10 + 1e-6)
    sign = "-" if dec_deg < 0 else "+"
    return (
        f"J{int(ra.h):02d}{int(ra.m):02d}{ra_tenths // 10:02d}.{ra_tenths % 10}"
        f"{sign}{int(dec.d):02d}{int(dec.m):02d}{dec_tenths // 10:02d}.{dec_tenths % 10}"
    )


# ---------------------------------------------------------------------------------------- ms, jobs, cal
async def test_ms_keeps_pointing_and_phase_centre_apart(client: AsyncClient) -> None:
    listed = await client.ms.list(limit=50)
    for row in listed.head(5).itertuples():
        ms = await client.ms.get(row.path)
        assert ms.phase_ra_deg == pytest.approx(row.ra_deg) and ms.phase_dec_deg == pytest.approx(row.dec_deg)
        if pd.notna(row.pointing_ra_deg):
            assert ms.pointing_ra_deg == pytest.approx(row.pointing_ra_deg)
            assert ms.ra_deg == pytest.approx(row.pointing_ra_deg)  # the preferred centre
        else:
            assert ms.pointing_ra_deg is None and ms.ra_deg == pytest.approx(row.ra_deg)


async def test_cal_tables_solved_from_an_ms(client: AsyncClient) -> None:
    try:
        every = await client.cal.list()
    except ToolkitError:
        pytest.skip("this site has no calibration registry")
    solved = every.dropna(subset=["source_ms_path"])
    ms_path = str(solved["source_ms_path"].iloc[0])
    found = await client.cal.list(source_ms_path=ms_path)
    assert sorted(found["path"]) == sorted(solved.loc[solved["source_ms_path"] == ms_path, "path"])
    with pytest.raises(ValidationError):
        await client.cal.list(source_ms_path="")


async def test_jobs_and_images_carry_what_the_api_showed_beside_them(client: AsyncClient) -> None:
    jobs = await client.jobs.list(limit=30)
    ms_rows = (await client.ms.list()).set_index("path")
    images = (await client.images.list()).set_index("path")
    checked = 0
    for row in jobs.itertuples():
        if not isinstance(row.ms_path, str) or row.ms_path not in ms_rows.index:
            continue
        job = await client.jobs.get(int(row.id)) if pd.notna(row.id) else await client.jobs.get(row.run_id)
        assert job.phase_ra_deg == pytest.approx(ms_rows.loc[row.ms_path, "ra_deg"])
        assert job.phase_dec_deg == pytest.approx(ms_rows.loc[row.ms_path, "dec_deg"])
        if job.output_image is not None and job.output_image in images.index:
            assert job.output_image_id == images.loc[job.output_image, "id"]
        ms = await client.ms.get(row.ms_path)
        expected = ms.primary_cal_table.path if ms.primary_cal_table else None
        assert (job.cal_table_match.path if job.cal_table_match else None) == expected
        checked += 1
    assert checked >= 5
    first = images.iloc[0]
    image = await client.images.get(int(first["id"]))
    qa = await client.qa.image(int(first["id"]))
    assert image.qa_summary == qa.summary and image.qa_summary.startswith(qa.grade)
    ms = await client.ms.get(str(first["ms_path"]))
    assert image.cal_table == (ms.primary_cal_table.path if ms.primary_cal_table else None)
