"""Widget panels driven from Python: set widget values, call callbacks, check the model state."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from toolkit import AsyncClient, Client
from toolkit.demo import DemoSite, build_demo_site
from toolkit.settings import Settings
from toolkit.widgets import Browser, Dashboard, ImagePanel, JobPanel, MSPanel, SourcePanel
from toolkit.widgets.panels import thumbnail

from .writes import NIGHT_WRITER


def rows(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_browser_pages_filters_and_sorts(newer_client: AsyncClient, site: DemoSite) -> None:
    browser = Browser(newer_client, page_size=50)
    await browser.settled()
    images = browser.views["images"]
    total = rows(site.products_db, "SELECT COUNT(*) FROM images")[0][0]
    assert images.state.count == total and len(images.frame) == 50
    newest = [r[0] for r in rows(site.products_db, "SELECT id FROM images ORDER BY created_at DESC, id DESC")]
    assert list(images.frame["id"]) == newest[:50]
    images.next_page()
    await browser.settled()
    assert list(images.frame["id"]) == newest[50:100] and images.state.number == 1
    images.previous_page()
    await browser.settled()
    assert list(images.frame["id"]) == newest[:50]
    images.goto_box.value = 4
    images.goto_button.click()
    await browser.settled()
    assert list(images.frame["id"]) == newest[150:200] and images.state.number == 3
    images.last_page()
    await browser.settled()
    assert list(images.frame["id"]) == newest[(len(newest) - 1) // 50 * 50 :][-len(images.frame) :]
    assert images.state.label().startswith(f"page {(total - 1) // 50 + 1} of")
    # Filter, sort, page size: each reloads page 1.
    images.choice_widgets["type"].value = "image"
    images.sort.value = "noise"
    images.descending.value = False
    await browser.settled()
    noise = images.frame["noise_jy"].dropna().tolist()
    assert set(images.frame["type"]) == {"image"} and noise == sorted(noise)
    images.page_size.value = 100
    await browser.settled()
    assert len(images.frame) == min(
        100, rows(site.products_db, "SELECT COUNT(*) FROM images WHERE type = 'image'")[0][0]
    )
    grid = images.grid
    assert len(grid.cells) == len(images.frame) and grid.visible[:2] == ["id", "path"]
    assert {"tags", "n_comments"} <= {c["name"] for c in grid.columns}  # offered in the column menu
    names = [c["name"] for c in grid.columns]
    first = images.frame.iloc[0]
    assert grid.cells[0][names.index("path")] == Path(first["path"]).name  # short, the full path on hover
    assert grid.titles[0][names.index("path")] == first["path"]
    measured = int(images.frame["noise_jy"].notna().to_numpy().argmax())
    noise = images.frame["noise_jy"].iloc[measured]
    assert grid.cells[measured][names.index("noise_jy")] == f"{noise * 1e3:.3f}"  # mJy, said in the header
    missing = images.frame["noise_jy"].isna().to_numpy()
    assert all(grid.cells[i][names.index("noise_jy")] == "—" for i in missing.nonzero()[0])
    assert grid.columns[names.index("noise_jy")]["unit"] == "mJy"
    images.search.value = "no-such-path"
    await browser.settled()
    assert images.frame.empty and "no rows match" in images.message.value
    for name in ("ms", "sources", "jobs", "cal"):
        assert len(browser.views[name].frame) > 0, name
    sources = browser.views["sources"]
    sources.goto(1)
    await browser.settled()
    every = [
        r[0] for r in rows(site.products_db, "SELECT DISTINCT source_id FROM photometry ORDER BY source_id")
    ]
    assert list(sources.frame["source_id"]) == every[50:100] and sources.state.number == 1
    browser.close()
    assert browser.runner.running == 0


async def test_selecting_a_row_opens_its_panel_and_links_work(newer_client: AsyncClient) -> None:
    browser = Browser(newer_client)
    await browser.settled()
    images = browser.views["images"]
    assert browser.panel is None and browser.detail.layout.display == "none"  # no room taken while closed
    images.grid.opened, images.grid.open_count = 0, 1  # what a click on the first row sends
    await browser.settled()
    panel = browser.panel
    assert isinstance(panel, ImagePanel) and panel.ident == int(images.frame["id"].iloc[0])
    assert browser.selected == panel.image and browser.detail.layout.display == "flex"
    assert panel.status.value == ""
    body = "".join(getattr(c, "value", "") for c in panel.body.children[1:])
    assert f'data-field="path">{panel.image.path}' in body
    assert "QA: " in panel.body.children[0].children[1].value
    picture = panel.body.children[0].children[0]  # the newest demo images have FITS files: a real thumbnail
    assert bytes(picture.value[:4]) == b"\x89PNG"
    ms_button = panel.body.children[1].children[0]
    ms_button.click()
    await browser.settled()
    assert isinstance(browser.panel, MSPanel) and browser.panel.ms.path == panel.image.ms_path
    assert panel.runner.closed  # the image panel was closed when the MS panel replaced it
    browser.views["sources"].open_row(0)
    await browser.settled()
    source_panel = browser.panel
    assert isinstance(source_panel, SourcePanel)
    everything = source_panel.shown_points
    assert everything == len(source_panel.curve) and len(source_panel.plot.x) == everything
    x0, x1, y0, y1 = source_panel.plot.view
    source_panel.plot.view = [x0, (x0 + x1) / 2, y0, y1]  # what a zoom on the first half sends
    assert 0 < source_panel.shown_points < everything
    assert all("QA " in label and "mJy" in label for label in source_panel.plot.labels)  # hover: image, grade
    browser.close()


async def test_errors_show_in_the_panel(newer_client: AsyncClient) -> None:
    panel = ImagePanel(newer_client, 10**9)
    await panel.settled()
    assert "RecordNotFoundError" in panel.status.value and panel.body.children == ()
    panel.close()


async def test_job_panel_tails_filters_and_follows(tmp_path: Path) -> None:
    site = build_demo_site(tmp_path / "site")
    async with AsyncClient(**site.settings_kwargs()) as client:
        (run_id,) = next(
            (r,)
            for (r,) in rows(site.products_db, "SELECT run_id FROM jobs WHERE status = 'failed'")
            if (site.log_dir / f"{r}.log").exists()
        )
        panel = JobPanel(client, run_id)
        await panel.settled()
        assert panel.job.run_id == run_id and len(panel.lines) > 5
        assert "Traceback" in panel.log_view.value
        panel.level.value = "ERROR"
        assert all("ERROR" in ln for ln in panel.visible_lines()) and panel.visible_lines()
        panel.level.value = "all"
        panel.search.value = "tclean"
        assert panel.visible_lines() and all("tclean" in ln.lower() for ln in panel.visible_lines())
        panel.search.value = ""
        panel.follow.value = True
        await asyncio.sleep(0.5)  # the follow starts at the end of the file
        with (site.log_dir / f"{run_id}.log").open("a") as log:
            log.write(
                "2026-11-30 12:00:01,000 - dsa110_contimg.imaging - INFO - a line written while following\n"
            )
        await until(lambda: "a line written while following" in panel.log_view.value)
        assert panel.following
        panel.follow.value = False
        await asyncio.sleep(0.05)
        assert not panel.following
        panel.follow.value = True
        await until(lambda: panel.following)
        panel.close()
        await asyncio.sleep(0.05)
        assert panel.runner.running == 0


async def test_dashboard_refreshes_and_stops(newer_client: AsyncClient, site: DemoSite) -> None:
    dash = Dashboard(newer_client)
    await dash.settled()
    assert f">{rows(site.products_db, 'SELECT COUNT(*) FROM images')[0][0]}<" in dash.counts.value
    assert dash.refreshes == 1 and "<table" in dash.recent.value
    # The site ended days before the clock: the grades are its last night's, not an empty last 24 hours
    night = await newer_client.last_night()
    assert sum(dash.grade_counts.values()) == len(await newer_client.qa.images(**night.bounds)) > 0
    assert f"night of {night.date:%Y-%m-%d}" in dash.grades.value
    dash.interval.value = 0.2
    await until(lambda: dash.refreshes >= 3)
    dash.close()
    await asyncio.sleep(0.05)
    assert dash.runner.running == 0


async def test_panels_work_with_the_blocking_client(site: DemoSite) -> None:
    client = Client(**site.settings_kwargs())
    try:
        browser = Browser(client)
        await browser.settled()
        assert len(browser.views["images"].frame) == 50
        browser.views["jobs"].open_row(0)
        await browser.settled()
        assert isinstance(browser.panel, JobPanel) and browser.panel.status.value == ""
        browser.close()
    finally:
        client.close()


def test_thumbnail_renders_fits_and_caches_on_mtime(tmp_path: Path) -> None:
    from astropy.io import fits

    path = tmp_path / "img.fits"
    fits.PrimaryHDU(np.random.default_rng(0).normal(size=(1, 64, 64)).astype("float32")).writeto(path)
    anywhere = Settings()
    png = thumbnail(anywhere, str(path))
    assert png is not None and png[:4] == b"\x89PNG"
    assert thumbnail(anywhere, str(path)) is png  # cached
    mapped = Settings(path_map=(("/stage", tmp_path),), image_roots=(tmp_path,))
    assert thumbnail(mapped, "/stage/img.fits") is png  # the recorded path, mapped to this machine
    assert thumbnail(Settings(image_roots=(tmp_path / "elsewhere",)), str(path)) is None  # outside the roots
    path.write_bytes(b"not fits")
    assert thumbnail(anywhere, str(path)) is None  # changed file: read again, unreadable: placeholder
    assert thumbnail(anywhere, str(tmp_path / "missing.fits")) is None


@pytest.mark.parametrize("size", [20, 1000])
def test_page_size_is_bounded(size: int, site: DemoSite) -> None:
    from toolkit import ValidationError

    with Client(**site.settings_kwargs()) as client, pytest.raises(ValidationError, match="page size"):
        Browser(client, page_size=size)


def test_panels_outside_an_event_loop_say_where_they_run(site: DemoSite) -> None:
    from toolkit import ConfigurationError

    with (
        Client(**site.settings_kwargs()) as client,
        pytest.raises(ConfigurationError, match="Jupyter kernel"),
    ):
        ImagePanel(client, 1)


async def test_panels_sign_off_comment_tag_and_label_in_place(site: DemoSite, tmp_path: Path) -> None:
    """The notes box of a panel writes through client.notes and shows what the notes database then holds."""
    notes_db = tmp_path / "notes.sqlite"
    async with AsyncClient(**{**site.settings_kwargs(), "notes_db": notes_db, "user": "carol"}) as client:
        image_id, path = rows(site.products_db, "SELECT id, path FROM images ORDER BY id LIMIT 1")[0]
        panel = ImagePanel(client, image_id)
        await panel.settled()
        box = panel.notes
        assert box.target == ("image", path) and "not signed off" in box.current.value

        box.grade.value = "warn"
        box.reason.value = "   "
        box.sign_button.click()  # without a reason: refused, nothing written
        await panel.settled()
        assert "needs a reason" in box.message.value and len(await client.notes.history(("image", path))) == 0

        box.reason.value = "noise high because of an RFI storm; accepted"
        box.sign_button.click()
        await panel.settled()
        box.comment_text.value = "sidelobes at the edge"
        box.comment_button.click()
        await panel.settled()
        box.tag_text.value = "rfi, edge"
        box.tag_button.click()
        await panel.settled()
        box.tag_text.value = "edge"
        box.untag_button.click()
        await panel.settled()

        history = await client.notes.history(("image", path))
        assert list(history["action"]) == ["sign_off", "comment", "tag", "tag", "untag"]
        assert set(history["author"]) == {"carol"} and box.writes == 4
        assert "signed off" in box.current.value and "RFI storm" in box.current.value
        assert ">rfi<" in box.current.value and ">edge<" not in box.current.value
        assert "sidelobes at the edge" in box.current.value and box.comment_text.value == ""
        assert box.history.value.count("<tr") == 1 + 5  # header and one row per event, newest first
        assert (await client.qa.image(image_id)).final_grade == "warn"
        assert "signed off warn by carol" in panel.qa_html.value  # the panel's QA line follows the sign-off
        panel.close()

        source = SourcePanel(client, site.transient_source)
        await source.settled()
        source.notes.label.value = "transient"
        source.notes.label_note.value = "not in NVSS"
        source.notes.label_button.click()
        await source.settled()
        listed = await client.sources.list(label="transient")
        assert listed["source_id"].tolist() == [site.transient_source]
        assert "<b>label</b> transient" in source.notes.current.value
        source.close()


async def test_a_header_click_sorts_on_the_server_and_the_controls_follow(
    newer_client: AsyncClient, site: DemoSite
) -> None:
    browser = Browser(newer_client)
    await browser.settled()
    images = browser.views["images"]
    assert (images.grid.sort_by, images.grid.descending) == ("created_at", True)
    images.grid.sort_by = "noise_jy"  # what a click on the noise header sends
    await browser.settled()
    assert images.sort.value == "noise" and images.descending.value is True
    top = [
        r[0] for r in rows(site.products_db, "SELECT id FROM images ORDER BY noise_jy DESC, id DESC LIMIT 50")
    ]
    assert list(images.frame["id"]) == top
    images.grid.descending = False  # a second click on the same header
    await browser.settled()
    noise = images.frame["noise_jy"].dropna().tolist()
    assert images.descending.value is False and noise == sorted(noise)
    images.sort.value = "path"  # the sort menu moves the header's arrow too
    await browser.settled()
    assert images.grid.sort_by == "path" and list(images.frame["path"]) == sorted(images.frame["path"])
    images.grid.sort_by = "beam_minor_arcsec"  # not sortable: ignored
    await browser.settled()
    assert images.sort.value == "path" and images.grid.sort_by == "path"
    browser.close()


async def test_the_browser_signs_off_checked_rows_in_one_batch_and_has_a_qa_tab(
    site: DemoSite, tmp_path: Path
) -> None:
    settings = {**site.settings_kwargs(), "notes_db": tmp_path / "notes.sqlite", "user": "dave"}
    async with AsyncClient(**settings) as client:
        browser = Browser(client)
        await browser.settled()
        images, bar = browser.views["images"], browser.sign_off_bar
        assert images.grid.checkable and not browser.views["sources"].grid.checkable
        images.grid.checked = [0, 2, 3]  # what three check boxes send
        bar.grade.value = "good"
        bar.sign_off()  # no reason: refused, nothing written
        await browser.settled()
        assert "needs a reason" in bar.message.value and len(await client.notes.list()) == 0
        bar.reason.value = "night review: metrics within limits"
        bar.button.click()
        await browser.settled()
        paths = [images.frame["path"].iloc[i] for i in (0, 2, 3)]
        signed = await client.notes.list(kind="sign_off")
        assert sorted(signed["target"]) == sorted(paths) and set(signed["author"]) == {"dave"}
        assert signed["created_at"].nunique() == 1  # one batch, one transaction
        assert (
            "signed off 3 images good in one transaction" in bar.message.value and images.grid.checked == []
        )

        browser.tabs.selected_index = len(browser.views)  # the QA tab reads the last night when first shown
        await browser.settled()
        qa = browser.qa_view
        night = await client.last_night()
        graded = await client.qa.images(**night.bounds)
        assert (
            qa.night == night and len(qa.frame) == len(graded) and len(qa.grid.cells) == min(50, len(graded))
        )
        assert {"grade", "final_grade"} <= set(qa.grid.visible)
        qa.grid.checked = [0, 1]
        bar.grade.value, bar.reason.value = "fail", "RFI storm"
        bar.button.click()
        await browser.settled()
        final = qa.frame.set_index("path")["final_grade"]  # the tab re-read the night after the batch
        assert [final[p] for p in graded["path"].iloc[:2]] == ["fail", "fail"]
        qa.grid.opened, qa.grid.open_count = 1, 1
        await browser.settled()
        assert isinstance(browser.panel, ImagePanel) and browser.panel.image.path == qa.frame["path"].iloc[1]
        browser.close()


async def test_the_night_panel_follows_the_pipeline_and_redraws_only_what_changed(tmp_path: Path) -> None:
    import sys
    from datetime import UTC, datetime

    from toolkit.widgets import NightPanel

    site = build_demo_site(
        tmp_path / "site", now=datetime(2026, 11, 30, 12, tzinfo=UTC)
    )  # days before the clock
    async with AsyncClient(**site.settings_kwargs()) as client:
        night = await client.last_night()
        panel = NightPanel(client, poll=0.2)
        await until(lambda: panel.reads == 1)
        assert f"night of {night.date:%Y-%m-%d}" in panel.title.value
        newest = rows(site.products_db, "SELECT path FROM images ORDER BY created_at DESC LIMIT 1")[0][0]
        assert f'data-path="{newest}"' in panel.parts["newest"].value
        assert (
            "contimg-bar" in panel.parts["ms_stages"].value
            and "contimg-bar" in panel.parts["job_outcomes"].value
        )
        assert 'data-key="failed"' in panel.parts["job_outcomes"].value
        await asyncio.sleep(1.0)  # five polls with nothing written: nothing read again
        assert panel.reads == 1
        drawn = dict(panel.redraws)

        at = str(night.newest.timestamp() + 30)
        writer = await asyncio.create_subprocess_exec(
            sys.executable, "-c", NIGHT_WRITER, str(site.products_db), at
        )
        assert await asyncio.wait_for(writer.wait(), timeout=60) == 0
        await until(
            lambda: (
                'data-path="/fresh/appended.image.fits"' in panel.parts["newest"].value
                and 'data-run-id="job-appended-failure"' in panel.parts["failed"].value
            ),
            seconds=20,
        )
        assert panel.reads == 2
        assert panel.redraws["ms_stages"] == drawn["ms_stages"]  # no MS was written: not redrawn
        assert (
            panel.redraws["newest"] == drawn["newest"] + 1 and panel.redraws["failed"] == drawn["failed"] + 1
        )
        panel.close()
        await asyncio.sleep(0.05)
        assert panel.runner.running == 0


async def test_eta_v_panel_selects_by_click_and_lasso_and_opens_the_light_curve(
    newer_client: AsyncClient,
) -> None:
    import math

    from toolkit.widgets import EtaVPanel, SourcePanel

    panel = EtaVPanel(newer_client)
    await panel.settled()
    result, metrics = panel.result, panel.metrics
    assert result is not None and len(panel.plot.x) == len(metrics) and not panel.plot.density
    candidates = sorted(result.candidates["source_id"])
    assert candidates and len(panel.plot.lines) == 2  # the cut-offs, dashed

    first = metrics.set_index("source_id").loc[candidates[0]]
    panel.plot.click_at = [math.log10(first["eta"]), math.log10(first["v"])]  # what a click there sends
    panel.plot.click_count += 1
    await panel.settled()
    assert panel.selection["source_id"].tolist() == [candidates[0]]
    (detail,) = panel.detail.children
    assert isinstance(detail, SourcePanel) and detail.ident == candidates[0]
    assert len(detail.plot.x) == len(await newer_client.sources.lightcurve(candidates[0]))

    x0, x1, y0, y1 = panel.plot.view
    eta_cut, v_cut = math.log10(result.eta_cutoff), math.log10(result.v_cutoff)
    panel.plot.lasso = [
        [eta_cut, v_cut],
        [x1, v_cut],
        [x1, y1],
        [eta_cut, y1],
    ]  # the corner above both cut-offs
    panel.plot.lasso_count += 1
    await panel.settled()
    assert sorted(panel.selection["source_id"]) == candidates  # above both cut-offs is what a candidate is
    assert f"<b>{len(candidates)} selected</b>" in panel.table.value
    panel.plot.click_at = [x0, y0]  # an empty corner: nothing
    panel.plot.click_count += 1
    await panel.settled()
    assert panel.selection.empty and panel.detail.children == ()
    panel.close()

    dense = EtaVPanel(newer_client, density_above=10)  # as a site of 100,000 sources is drawn
    await dense.settled()
    plotted = sum(
        1 for x, y in zip(dense.plot.x, dense.plot.y, strict=True) if x is not None and y is not None
    )
    finite = int(((metrics["eta"] > 0) & (metrics["v"] > 0)).sum())
    assert sum(dense.plot.density["counts"]) == finite and len(dense.plot.x) == len(candidates) == plotted
    dense.close()


async def test_the_sky_view_opens_the_source_or_image_clicked(
    newer_client: AsyncClient, site: DemoSite
) -> None:
    from toolkit.widgets import SkyPanel

    sky = SkyPanel(newer_client)
    await sky.settled()
    sources = await newer_client.sources.list()
    images = (await newer_client.images.list()).dropna(subset=["center_ra_deg"])
    assert len(sky.points) == len(sources) + len(images) and len(sky.plot.x) == len(sky.points)
    assert sky.plot.view[0] > sky.plot.view[1]  # RA grows to the left
    source = sources.iloc[len(sources) // 2]
    sky.plot.click_at = [float(source["ra_deg"]), float(source["dec_deg"])]
    sky.plot.click_count += 1
    await sky.settled()
    assert isinstance(sky.panel, SourcePanel) and sky.panel.ident == source["source_id"]
    image = images.iloc[0]
    near = sky.points.assign(
        d=(sky.points["ra_deg"] - image["center_ra_deg"]) ** 2
        + (sky.points["dec_deg"] - image["center_dec_deg"]) ** 2
    ).sort_values("d")
    sky.plot.click_at = [float(image["center_ra_deg"]), float(image["center_dec_deg"])]
    sky.plot.click_count += 1
    await sky.settled()
    expected = near.iloc[0]  # the nearest point there: that image, or a source on top of it
    kind = ImagePanel if expected["kind"] == "image" else SourcePanel
    assert isinstance(sky.panel, kind) and str(sky.panel.ident) == expected["ident"]
    sky.close()
