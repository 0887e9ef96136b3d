"""client.last_night(): the last night that has data, on sites that ended at any time, and what uses it."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from toolkit import AsyncClient, Client, RecordNotFoundError
from toolkit.demo import DemoSite
from toolkit.domains.nights import night_of

from ..conftest import NOW


def test_a_night_is_the_utc_day_of_its_newest_data() -> None:
    late = datetime(2025, 10, 6, 23, 59, 59, 999_999, tzinfo=UTC)
    night = night_of(late)
    assert (night.date.isoformat(), night.start, night.end) == (
        "2025-10-06",
        late.replace(hour=0, minute=0, second=0, microsecond=0),
        late,
    )
    pacific = timezone(timedelta(hours=-8))
    assert night_of(datetime(2025, 10, 6, 17, tzinfo=pacific)).date.isoformat() == "2025-10-07"
    assert night.bounds == {"since": night.start, "until": night.end}


async def test_last_night_on_both_schemas_is_the_day_of_the_newest_image(sites: dict[str, DemoSite]) -> None:
    for site in sites.values():
        with closing(sqlite3.connect(f"file:{site.products_db}?mode=ro", uri=True)) as conn:
            (newest,) = conn.execute("SELECT MAX(created_at) FROM images").fetchone()
            day = datetime.fromtimestamp(newest, UTC).date()
            start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
            (in_day,) = conn.execute(
                "SELECT COUNT(*) FROM images WHERE created_at >= ? AND created_at < ?",
                (start, start + 86_400),
            ).fetchone()
        async with AsyncClient(**site.settings_kwargs()) as client:
            night = await client.last_night()
            assert night.date == day <= NOW.date() and night.newest.timestamp() == pytest.approx(newest)
            assert len(await client.images.list(**night.bounds)) == in_day > 0
            assert len(await client.qa.images(**night.bounds)) == in_day


async def test_the_report_defaults_to_the_last_night(site: DemoSite) -> None:
    async with AsyncClient(**site.settings_kwargs()) as client:
        night = await client.last_night()
        report = await client.qa.report()
        assert (report.since, report.until) == (night.start, night.end)
        assert sum(report.totals["images"].values()) == len(await client.qa.images(**night.bounds))
        everything = await client.qa.report(since="2000-01-01")
        assert sum(everything.totals["images"].values()) > sum(report.totals["images"].values())


async def test_a_site_with_no_images_falls_back_to_ms_then_says_it_has_no_night(
    site: DemoSite, tmp_path: Path
) -> None:
    copy = tmp_path / "products.sqlite3"
    shutil.copy(site.products_db, copy)  # a copy of our own: the pipeline's file is never written
    with closing(sqlite3.connect(copy)) as conn, conn:
        conn.execute("DELETE FROM images")
        (mid,) = conn.execute("SELECT MAX(mid_mjd) FROM ms_index").fetchone()
    async with AsyncClient(**{**site.settings_kwargs(), "products_db": copy}) as client:
        night = await client.last_night()
        assert night.newest.timestamp() == pytest.approx((mid - 40587.0) * 86400.0, abs=1e-3)
    with closing(sqlite3.connect(copy)) as conn, conn:
        conn.execute("DELETE FROM ms_index")
        conn.execute("DELETE FROM jobs")
    with Client(**{**site.settings_kwargs(), "products_db": copy}) as blocking:
        with pytest.raises(RecordNotFoundError, match="no images and no measurement sets"):
            blocking.last_night()
        assert blocking.qa.report().empty  # the report's default window: nothing to grade, said so
