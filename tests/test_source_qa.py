"""Source QA metrics (pure) and qa.source / qa.sources on the demo sites."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit import AsyncClient, RecordNotFoundError, ValidationError
from toolkit.demo import DemoSite
from toolkit.qa.grade import grade
from toolkit.qa.rules import QARules
from toolkit.qa.sources import source_metrics


def _measurements(**columns: list[object]) -> pd.DataFrame:
    n = len(columns["source_id"])
    base: dict[str, list[object]] = {
        "mjd": list(range(n)),
        "flux": [1.0] * n,
        "ra_deg": [10.0] * n,
        "dec_deg": [20.0] * n,
        "image_path": [f"/i/{k}" for k in range(n)],
        "sep_from_center_deg": [None] * n,
    }
    return pd.DataFrame({**base, **columns})


def test_metrics_count_bad_images_gaps_outliers_and_centre_distance() -> None:
    ids = ["a"] * 8 + ["b"] * 3
    mjd = [*[0, 1, 2, 3, 4, 5, 6, 60], *[0, 1, 2]]  # a: one gap of 54 days after a 1-day cadence
    flux = [*[1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 9.0], *[1.0] * 3]  # a: one outlier
    sep = [*[0.5, 0.2, None, 0.1, 0.1, 0.1, 0.1, 0.1], *[None] * 3]
    frame = _measurements(source_id=ids, mjd=mjd, flux=flux, sep_from_center_deg=sep)
    images = pd.DataFrame(
        {
            "path": [f"/i/{k}" for k in range(11)],
            "grade": ["fail", "warn"] + ["good"] * 8 + ["fail"],
            "center_ra_deg": [np.nan] * 2 + [12.0] + [np.nan] * 7 + [10.0],
            "center_dec_deg": [np.nan] * 2 + [20.0] + [np.nan] * 7 + [23.0],
        }
    )
    m = source_metrics(frame.sample(frac=1.0, random_state=1), images).set_index("source_id")  # any order
    a, b = m.loc["a"], m.loc["b"]
    assert (a.n_measurements, a.n_on_failed_images, a.n_on_warned_images) == (8, 1, 1)
    assert a.failed_image_pct == pytest.approx(12.5) and b.failed_image_pct == pytest.approx(100 / 3)
    assert a.median_cadence_days == 1 and a.max_gap_days == 54 and a.gap_ratio == 54
    assert np.isnan(b.gap_ratio) and np.isnan(b.n_flux_outliers)  # 3 measurements: not assessed
    assert a.n_flux_outliers == 1
    # Recorded distances where present; the one without is computed from its image's centre (2 deg of RA
    # at Dec 20 is 1.879 deg of arc), and it is the largest.
    assert a.max_center_distance_deg == pytest.approx(1.8794, abs=1e-3)
    assert b.max_center_distance_deg == pytest.approx(3.0, abs=1e-9)  # the last image's centre, 3 deg north
    graded = grade(m.reset_index(), QARules.default().checks("source")).set_index("source_id")
    assert graded.loc["a", "grade"] == "warn" and "gap 54 x > 10 x" in graded.loc["a", "summary"]
    assert "flux_outliers 1 > 0" in graded.loc["a", "summary"]
    assert graded.loc["b", "grade"] == "fail"  # a third on failed images, 3 deg from the centre
    assert "gap" in graded.loc["b", "not_assessed"] and "flux_outliers" in graded.loc["b", "not_assessed"]


async def test_qa_source_matches_the_bulk_form_and_flags_the_transient(
    client: AsyncClient, site: DemoSite
) -> None:
    every = await client.qa.sources()
    assert len(every) == len(await client.sources.list())
    assert set(every["grade"]) <= {"good", "warn", "fail", "not assessed"}
    transient = site.transient_source
    row = every.set_index("source_id").loc[transient]
    assert row["grade"] != "good" and row["n_flux_outliers"] >= 1
    one = await client.qa.source(transient)
    assert one.grade == row["grade"] and one.summary == row["summary"]
    assert one.metrics["n_flux_outliers"] == row["n_flux_outliers"]
    assert one.checks["source.flux_outliers"] == "warn" and one.final_grade == one.grade
    # Its failed-image share, against the images' own QA.
    graded = (await client.qa.images()).set_index("path")
    frame = await client.sources.measurements(source_ids=[transient], columns=["image_path"])
    share = 100 * (frame["image_path"].map(graded["grade"]) == "fail").mean()
    assert one.metrics["failed_image_pct"] == pytest.approx(share)
    some = await client.qa.sources(source_ids=[transient, str(every["source_id"].iloc[0])])
    assert sorted(some["source_id"]) == sorted([transient, str(every["source_id"].iloc[0])])
    warned = await client.qa.sources(grade="warn")
    assert (warned["grade"] == "warn").all() and len(warned) == (every["grade"] == "warn").sum()
    lenient = await client.qa.source(transient, rules={"source.flux_outliers": {"warn": 100}})
    assert lenient.checks["source.flux_outliers"] == "pass"
    with pytest.raises(RecordNotFoundError):
        await client.qa.source("J000000.0+000000.0")
    with pytest.raises(RecordNotFoundError):
        await client.qa.sources(source_ids=["nope"])
    with pytest.raises(ValidationError):
        await client.qa.sources(grade="excellent")


async def test_qa_sources_in_chunks_of_whole_sources_equals_one_read(
    any_site: DemoSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every source's QA with a 16 KiB budget (16 rows a chunk at source QA's cost): the photometry is read
    and graded a chunk of whole sources at a time, and the frame is the one of one read, on every schema
    and backend."""
    from toolkit.domains import sources

    joined: list[int] = []  # how many parts each answer was joined from
    join = sources.join_parts
    monkeypatch.setattr(
        sources, "join_parts", lambda parts, order: joined.append(len(parts)) or join(parts, order)
    )
    async with (
        AsyncClient(**any_site.settings_kwargs()) as whole,
        AsyncClient(**any_site.settings_kwargs(), memory_budget=16 * 1024) as chunked,
    ):
        want = await whole.qa.sources()
        got = await chunked.qa.sources()
        assert len(want) == len(await whole.sources.list()) > 10
        pd.testing.assert_frame_equal(got, want)
        assert joined[0] == 1 and joined[1] > 20  # one read, then many chunks
        pd.testing.assert_frame_equal(
            await chunked.qa.sources(grade="warn"), await whole.qa.sources(grade="warn")
        )
