"""The panels in a real JupyterLab, in headless Chromium: run notebooks/05_panels.ipynb, open a row's panel,
follow a job's log while this test writes to it. Screenshots go to test-artifacts/ (or $CONTIMG_TEST_ARTIFACTS).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from toolkit.demo import DemoSite, build_demo_site

from ..conftest import CHROMIUM_ARGS, chromium_path
from .writes import NIGHT_WRITER

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class Lab:
    url: str
    site: DemoSite
    process: subprocess.Popen[str]
    runtime: Path


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    site = build_demo_site(tmp_path / "site")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(
        ROOT / "notebooks" / "05_panels.ipynb", notebooks / "05_panels.ipynb"
    )  # a copy: no kernel reuse
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    runtime = tmp_path / "runtime"
    env = {
        **os.environ,
        **site.env,
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "CONTIMG_USER": "lab-tester",
    }
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        f"--IdentityProvider.token={token}", f"--notebook-dir={notebooks}", "--ServerApp.open_browser=False",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("JupyterLab did not start") from None
                time.sleep(0.5)
        yield Lab(f"{base}/lab/tree/05_panels.ipynb?token={token}", site, process, runtime)
    finally:
        process.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    leftovers = subprocess.run(["pgrep", "-f", str(runtime)], capture_output=True, text=True).stdout.strip()
    assert leftovers == "", f"kernel processes left running: {leftovers}"


def _offsite(urls: list[str]) -> list[str]:
    """The requests that left this machine (the panels must work offline)."""
    return [u for u in urls if not u.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:"))]


def _pixel(
    at: tuple[float, float], view: list[float], width: int = 560, height: int = 380
) -> tuple[float, float]:
    """Where a point in plot coordinates is on the Scatter's canvas (its margins: 62, 12, 10, 42)."""
    x0, x1, y0, y1 = view
    return (
        62 + (at[0] - x0) / (x1 - x0) * (width - 62 - 12),
        height - 42 - (at[1] - y0) / (y1 - y0) * (height - 10 - 42),
    )


def _artifacts() -> Path:
    folder = Path(os.environ.get("CONTIMG_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_panels_in_jupyterlab(lab: Lab) -> None:
    from playwright.async_api import async_playwright

    with closing(sqlite3.connect(f"file:{lab.site.products_db}?mode=ro", uri=True)) as conn:
        ordered = conn.execute(
            "SELECT id, path FROM images ORDER BY created_at DESC, id DESC LIMIT 2"
        ).fetchall()
        by_noise = [
            r[0] for r in conn.execute("SELECT path FROM images ORDER BY noise_jy DESC, id DESC LIMIT 10")
        ]
    newest = ordered[0]
    artifacts = _artifacts()
    import math

    from toolkit import Client
    from toolkit.widgets.scatter import padded_view

    with Client(**lab.site.settings_kwargs()) as client:
        result = client.sources.eta_v()
    logs = result.metrics[(result.metrics["eta"] > 0) & (result.metrics["v"] > 0)]
    etav_view = padded_view(logs["eta"].map(math.log10), logs["v"].map(math.log10))
    best = result.candidates.sort_values("eta").iloc[-1]
    candidate, n_candidates = str(best["source_id"]), len(result.candidates)
    candidate_at = (math.log10(best["eta"]), math.log10(best["v"]))
    cut = (math.log10(result.eta_cutoff), math.log10(result.v_cutoff))
    etav_corner = [cut, (etav_view[1], cut[1]), (etav_view[1], etav_view[3]), (cut[0], etav_view[3])]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 1200})
            kernel_ready = asyncio.Event()

            def watch(ws: object) -> None:
                def frame(payload: object) -> None:
                    if "kernel_info_reply" in (payload if isinstance(payload, str) else str(payload)):
                        kernel_ready.set()

                ws.on("framereceived", frame)  # type: ignore[attr-defined]

            page.on("websocket", watch)
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            await page.goto(lab.url)
            # The toolbar says "idle" before a kernel is connected; the kernel's own reply says it is ready.
            await asyncio.wait_for(kernel_ready.wait(), timeout=90)
            await page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            await page.locator('li[data-command="runmenu:run-all"]').click()

            grid = page.locator(".contimg-browser .contimg-grid").first
            first_row = grid.locator("tbody tr[data-row]").first
            await first_row.wait_for(timeout=90_000)
            await first_row.scroll_into_view_if_needed()  # JupyterLab skips drawing cells out of view
            assert await page.locator(".contimg-detail").is_hidden()  # no room taken while nothing is open
            await page.screenshot(path=str(artifacts / "lab-browser.png"), full_page=True)
            # One row per line: a row is about one text line tall, however long its path
            height = (await first_row.bounding_box() or {}).get("height", 0)
            assert 0 < height < 40, height
            path_cell = first_row.locator('td[data-column="path"]')
            assert await path_cell.get_attribute("title") == newest[1]  # the full path on hover
            assert await path_cell.inner_text() == Path(newest[1]).name

            # Clicking a row opens it.
            await first_row.click()
            field = page.locator('.contimg-detail .contimg-image-panel td[data-field="path"]')
            await field.wait_for(timeout=60_000)
            assert await field.inner_text() == newest[1]
            assert await page.locator(
                '.contimg-detail .contimg-image-panel td[data-field="id"]'
            ).inner_text() == str(newest[0])
            assert "QA:" in await page.locator(".contimg-detail .contimg-qa").inner_text()
            await page.screenshot(path=str(artifacts / "lab-image-panel.png"), full_page=True)

            # Sign the image off in its panel; the sign-off is then in the notes database.
            notes = page.locator(".contimg-detail .contimg-image-panel .contimg-notes")
            await notes.locator("select").first.select_option("warn")
            reason = f"RFI storm; accepted ({secrets.token_hex(3)})"
            await notes.locator('input[placeholder="reason (required)"]').fill(reason)
            await notes.locator(".contimg-notes-sign-off").click()
            await notes.locator(".contimg-signoff", has_text=reason).wait_for(timeout=30_000)
            assert lab.site.notes_db is not None
            with closing(sqlite3.connect(f"file:{lab.site.notes_db}?mode=ro", uri=True)) as conn:
                written = conn.execute(
                    "SELECT target_kind, target, author, grade FROM events WHERE action = 'sign_off' AND text = ?",
                    (reason,),
                ).fetchall()
            assert written == [("image", newest[1], "lab-tester", "warn")]
            await notes.scroll_into_view_if_needed()
            await page.screenshot(path=str(artifacts / "lab-signoff.png"), full_page=False)

            # Arrow keys move the selection; Enter opens the selected row.
            await first_row.click()
            await page.keyboard.press("ArrowDown")
            await page.keyboard.press("ArrowDown")
            await page.keyboard.press("k")
            second = grid.locator("tbody tr.selected")
            await second.wait_for(timeout=10_000)
            assert await second.get_attribute("data-row") == "1"
            await page.keyboard.press("Enter")
            await field.filter(has_text=ordered[1][1]).wait_for(timeout=60_000)

            # A header click sorts on the server: the order is the database's ORDER BY.
            await grid.locator('th[data-column="noise_jy"]').click()
            await grid.locator('th.sorted[data-column="noise_jy"]').wait_for(timeout=30_000)
            await (
                grid.locator("tbody tr[data-row]")
                .first.locator('td[data-column="path"]')
                .filter(has_text=Path(by_noise[0]).name)
                .wait_for(timeout=30_000)
            )
            shown = [
                await c.get_attribute("title")
                for c in await grid.locator('tbody td[data-column="path"]').all()
            ]
            assert shown[:10] == by_noise[:10]
            await page.screenshot(path=str(artifacts / "lab-sorted.png"), full_page=False)

            # Check two rows and sign them off in one batch from the bar under the tabs.
            boxes = grid.locator("tbody input.contimg-check")
            await boxes.nth(0).check()
            await boxes.nth(1).check()
            bar = page.locator(".contimg-sign-off-bar").first
            batch_reason = f"night review ({secrets.token_hex(3)})"
            await bar.locator("input[type=text]").fill(batch_reason)
            await bar.locator(".contimg-sign-off-checked").click()
            await bar.locator(".contimg-sign-off-message", has_text="in one transaction").wait_for(
                timeout=30_000
            )
            with closing(sqlite3.connect(f"file:{lab.site.notes_db}?mode=ro", uri=True)) as conn:
                batch = conn.execute(
                    "SELECT target, created_at FROM events WHERE action = 'sign_off' AND text = ?",
                    (batch_reason,),
                ).fetchall()
            assert sorted(t for t, _ in batch) == sorted(by_noise[:2]) and len({c for _, c in batch}) == 1
            await page.screenshot(path=str(artifacts / "lab-batch-signoff.png"), full_page=False)

            # The QA tab: the last night's images with computed and final grades.
            await page.locator(".lm-TabBar-tabLabel", has_text="QA · last night").first.click()
            qa_grid = page.locator(".contimg-qa-view .contimg-grid").first
            await qa_grid.locator("tbody tr[data-row]").first.wait_for(timeout=60_000)
            assert await qa_grid.locator('th[data-column="final_grade"]').count() == 1
            await page.screenshot(path=str(artifacts / "lab-qa-tab.png"), full_page=False)

            # The eta-V plane: a click on a candidate opens its light curve; a lasso selects several.
            etav = page.locator(".contimg-etav").first
            canvas = etav.locator(".contimg-etav-plot canvas")
            await canvas.wait_for(timeout=60_000)
            await etav.locator("text=candidates in colour").wait_for(timeout=60_000)
            await canvas.scroll_into_view_if_needed()
            x, y = _pixel(candidate_at, etav_view)
            await canvas.click(position={"x": x, "y": y})
            curve = etav.locator(".contimg-source-panel .contimg-lightcurve canvas")
            await curve.wait_for(timeout=60_000)
            assert candidate in await etav.locator(".contimg-source-panel").first.inner_text()
            box = await canvas.bounding_box()
            assert box is not None
            corners = [_pixel(c, etav_view) for c in etav_corner]
            await page.mouse.move(box["x"] + corners[0][0], box["y"] + corners[0][1])
            await page.mouse.down()
            for cx, cy in [*corners[1:], corners[0]]:
                await page.mouse.move(box["x"] + cx, box["y"] + cy, steps=8)
            await page.mouse.up()
            await etav.locator(".contimg-etav-selection", has_text=f"{n_candidates} selected").wait_for(
                timeout=30_000
            )
            await etav.scroll_into_view_if_needed()
            await page.screenshot(path=str(artifacts / "lab-etav.png"), full_page=False)

            assert await page.locator(".contimg-dashboard .contimg-grades").count() == 1
            night = page.locator(".contimg-night").first
            await night.locator(".contimg-night-image").first.wait_for(timeout=60_000)
            await night.scroll_into_view_if_needed()
            await page.screenshot(path=str(artifacts / "lab-night.png"), full_page=False)
            # The night view follows the pipeline: an image and a failed job written now appear without a reload.
            with closing(sqlite3.connect(f"file:{lab.site.products_db}?mode=ro", uri=True)) as conn:
                (latest,) = conn.execute("SELECT MAX(created_at) FROM images").fetchone()
            writer = await asyncio.create_subprocess_exec(
                sys.executable, "-c", NIGHT_WRITER, str(lab.site.products_db), str(latest + 30)
            )
            assert await asyncio.wait_for(writer.wait(), timeout=60) == 0
            await night.locator('.contimg-night-image[data-path="/fresh/appended.image.fits"]').wait_for(
                timeout=60_000
            )
            await night.locator('.contimg-night-failed[data-run-id="job-appended-failure"]').wait_for(
                timeout=30_000
            )
            await night.scroll_into_view_if_needed()
            await page.screenshot(path=str(artifacts / "lab-night-updated.png"), full_page=False)
            job_panel = page.locator(".contimg-job-panel").last
            log = job_panel.locator(".contimg-log")
            await log.wait_for(timeout=60_000)
            await job_panel.locator(".contimg-follow").click()
            await asyncio.sleep(1.5)  # the follow task starts at the current end of the file
            run_id = (await job_panel.locator('td[data-field="run_id"]').inner_text()).strip()
            marker = f"line appended by the browser test {secrets.token_hex(4)}"
            with (lab.site.log_dir / f"{run_id}.log").open("a") as handle:
                handle.write(f"2026-11-30 12:00:01,000 - dsa110_contimg.imaging - INFO - {marker}\n")
            await job_panel.locator(".contimg-log", has_text=marker).wait_for(timeout=30_000)
            await job_panel.locator(".contimg-log").scroll_into_view_if_needed()
            await page.screenshot(path=str(artifacts / "lab-job-follow.png"), full_page=True)
            errors = await page.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
            ).count()
            assert errors == 0
            assert (
                _offsite(requested) == []
            )  # everything, the widgets' JavaScript included, came from the server
        finally:
            await browser.close()


@dataclass
class Dashboard:
    url: str
    site: DemoSite
    anonymous_status: int  # what the page answers without the token


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Dashboard]:
    """`contimg dashboard` on a demo site that ended days ago, with nothing configured in the environment."""
    import http.client

    site = build_demo_site(tmp_path / "site", now=datetime(2026, 11, 30, 12, tzinfo=UTC))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "CONTIMG_"))},
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
    }
    command = [
        sys.executable, "-m", "toolkit", "dashboard", str(tmp_path / "site"), "--port", str(port),
        "--token", token, "--poll", "2",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/")
                anonymous = conn.getresponse().status
                conn.close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("the dashboard did not start") from None
                time.sleep(0.5)
        yield Dashboard(f"http://127.0.0.1:{port}/?token={token}", site, anonymous)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_contimg_dashboard_serves_the_night_with_a_token(dashboard: Dashboard) -> None:
    from playwright.async_api import async_playwright

    assert dashboard.anonymous_status in (302, 403)  # no token, no night
    with closing(sqlite3.connect(f"file:{dashboard.site.products_db}?mode=ro", uri=True)) as conn:
        (newest,) = conn.execute("SELECT MAX(created_at) FROM images").fetchone()
    night = datetime.fromtimestamp(newest, UTC).strftime("%Y-%m-%d")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            await page.goto(dashboard.url)
            panel = page.locator(".contimg-night").first
            await panel.locator(".contimg-night-image").first.wait_for(timeout=120_000)
            assert f"night of {night}" in await panel.inner_text()
            assert await page.locator(".jp-InputArea, .CodeMirror, .cm-editor").count() == 0  # no code shown
            await page.screenshot(path=str(_artifacts() / "dashboard.png"), full_page=False)
            assert _offsite(requested) == []
        finally:
            await browser.close()
