"""QA: rules files, vectorised grading (pure), client.qa on the demo sites, reports in a real browser.

Expected grades are recomputed here from plain sqlite3 reads and the thresholds, never taken from the code
under test.
"""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit import AsyncClient, Client, QARules, RecordNotFoundError, ValidationError
from toolkit.demo import DemoSite
from toolkit.errors import FileNotAccessibleError
from toolkit.qa import grade
from toolkit.qa.rules import CATALOGUE

from ..conftest import CHROMIUM_ARGS, NOW, chromium_path

AS_OF = NOW.isoformat()


def query(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


# ---------------------------------------------------------------------------------------------- rules
def test_defaults_cover_the_catalogue_and_are_described() -> None:
    rules = QARules.default()
    described = rules.describe()
    assert list(described["check"]) == [f"{m.section}.{m.name}" for m in CATALOGUE]
    assert rules["image.rms_noise"].fail == 3.0 and rules["image.rms_noise"].metric.unit == "mJy"
    for key in (
        "image.dynamic_range",
        "image.beam_major",
        "image.beam_ellipticity",
        "image.num_sources",
        "image.pbcor",
    ):
        assert rules[key].enabled
    for key in (
        "calibration.flagged_fraction",
        "calibration.k_delay_rms",
        "calibration.bp_amp_rms",
        "ms.stuck",
        "job.duration",
    ):
        assert rules[key].enabled


def test_rules_file_overrides_only_what_it_sets(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("[image.rms_noise]\nfail = 5.0\n\n[ms]\nstuck = { warn = 2, enabled = false }\n")
    rules = QARules.load(path)
    assert rules["image.rms_noise"].fail == 5.0 and rules["image.rms_noise"].warn == 2.0
    assert not rules["ms.stuck"].enabled and rules["ms.stuck"].warn == 2
    assert rules["image.beam_major"] == QARules.default()["image.beam_major"]
    assert str(path) in rules.source


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[image]\nrms_noise = { fail = 3.0 }\n\n[image.noise_level]\nfail = 2\n",
            r"line 4: unknown check image\.noise_level",
        ),
        (
            '# comment\n[image.rms_noise]\nwarn = 1.0\nfail = "high"\n',
            r"line 4: image\.rms_noise\.fail must be a number \(in mJy\)",
        ),
        ("[image.rms_noise]\nfail = 3.0\n\n[imaging.x]\nfail = 1\n", r"line 4: unknown section \[imaging\]"),
        (
            '[ms.stage]\nfail = "calibrated"\nwarn = "imaged"\nlevel = 3\n',
            r"line 4: ms\.stage has no setting 'level'",
        ),
        (
            "[image.rms_noise]\nwarn = 4.0\nfail = 3.0\n",
            r"line 1: image\.rms_noise: warn \(4\.0\) must not be above fail",
        ),
        ("[image.rms_noise\nfail = 3\n", r"not valid TOML"),
        (  # an integer too big for a float: math.isfinite raised OverflowError
            "[image.rms_noise]\nwarn = 1.0\nfail = " + "9" * 400 + "\n",
            r"line 3: image\.rms_noise\.fail must be a number",
        ),
        ('[ms.stage]\nfail = "imaging"\n', r"line 2: ms\.stage\.fail must be a stage"),
    ],
)
def test_bad_rules_files_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValidationError, match=message):
        QARules.load(path)


def test_rules_resolve_from_overrides_paths_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert QARules.resolve({"image.rms_noise": {"fail": 9.0}})["image.rms_noise"].fail == 9.0
    assert QARules.resolve({"job": {"duration": {"warn": 5}}})["job.duration"].warn == 5
    path = tmp_path / "env.toml"
    path.write_text("[job.duration]\nfail = 70\n")
    monkeypatch.setenv("CONTIMG_QA_RULES", str(path))
    assert QARules.resolve(None)["job.duration"].fail == 70
    with pytest.raises(FileNotAccessibleError, match="does not exist"):
        QARules.resolve(tmp_path / "missing.toml")
    with pytest.raises(ValidationError, match=r"unknown check image\.nope"):
        QARules.resolve({"image.nope": {"fail": 1}})


# ---------------------------------------------------------------------------------- grading (pure)
def image_frame(**columns: list[Any]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base: dict[str, Any] = {
        "type": ["image"] * n,
        "ms_stage": ["imaged"] * n,
        "rms_noise_jy": [1e-3] * n,
        "dynamic_range": [500.0] * n,
        "beam_major_arcsec": [16.0] * n,
        "beam_ellipticity": [0.2] * n,
        "num_sources": [100] * n,
        "pb_corrected": [True] * n,
    }
    base.update(columns)
    return pd.DataFrame(base)


def test_reasons_name_metric_value_and_threshold() -> None:
    frame = image_frame(rms_noise_jy=[4.1e-3, 2.5e-3, 1e-3], dynamic_range=[500.0, 500.0, 80.0])
    graded = grade(frame, QARules.default().checks("image"))
    assert list(graded["grade"]) == ["fail", "warn", "fail"]
    assert graded["reasons"][0] == "rms_noise 4.1 mJy > 3 mJy"
    assert graded["reasons"][1] == "rms_noise 2.5 mJy > 2 mJy"
    assert graded["reasons"][2] == "dynamic_range 80 < 100"
    assert graded["summary"][0] == "fail: rms_noise 4.1 mJy > 3 mJy"
    assert list(graded["rms_noise_check"]) == ["fail", "warn", "pass"]


def test_missing_metric_is_not_assessed_and_no_metric_falls_back_to_stage() -> None:
    nan = float("nan")
    frame = image_frame(
        rms_noise_jy=[nan, nan],
        dynamic_range=[500.0, nan],
        beam_major_arcsec=[16.0, nan],
        beam_ellipticity=[0.2, nan],
        num_sources=[100, None],
        pb_corrected=[True, None],
        ms_stage=["imaged", "calibrated"],
    )
    graded = grade(
        frame, QARules.default().checks("image"), fallback_stage="ms_stage", subject="image metrics"
    )
    assert graded["rms_noise_check"][0] == "not assessed"
    assert graded["grade"][0] == "good" and graded["graded_by"][0] == "metrics"
    assert graded["summary"][0] == "good: 5 checks passed (1 not assessed)"
    assert graded["not_assessed"][0] == "rms_noise: no value"
    assert graded["grade"][1] == "warn" and graded["graded_by"][1] == "stage"
    assert graded["summary"][1] == "warn: no image metrics; graded by MS stage calibrated"
    nothing = grade(
        image_frame(
            rms_noise_jy=[nan],
            dynamic_range=[nan],
            beam_major_arcsec=[nan],
            beam_ellipticity=[nan],
            num_sources=[None],
            pb_corrected=[None],
            ms_stage=[None],
        ),
        QARules.default().checks("image"),
        fallback_stage="ms_stage",
    )
    assert nothing["grade"][0] == "not assessed"


def test_types_and_applies_columns_make_checks_not_applicable() -> None:
    frame = image_frame(type=["residual", "image"], num_sources=[None, 1], pb_corrected=[False, False])
    graded = grade(frame, QARules.default().checks("image"))
    assert list(graded["num_sources_check"]) == ["n/a", "fail"]
    assert list(graded["pbcor_check"]) == ["n/a", "warn"]
    assert graded["grade"][0] == "good"
    assert graded["reasons"][1] == "num_sources 1 < 5; pbcor: no primary-beam corrected version"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.floats(0, 0.01)),
            st.one_of(st.none(), st.floats(1, 2000)),
            st.one_of(st.none(), st.floats(5, 60)),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_grade_is_the_worst_check_row_by_row(
    values: list[tuple[float | None, float | None, float | None]],
) -> None:
    rules = QARules.default()
    noise, dr, beam = (list(v) for v in zip(*values, strict=True))
    frame = image_frame(
        rms_noise_jy=[np.nan if v is None else v for v in noise],
        dynamic_range=[np.nan if v is None else v for v in dr],
        beam_major_arcsec=[np.nan if v is None else v for v in beam],
    )
    graded = grade(frame, rules.checks("image"))

    def level(value: float | None, key: str, scale: float = 1.0) -> int:
        rule = rules[key]
        if value is None or math.isnan(value):
            return -1
        v = value * scale
        worse = (lambda a, b: a > b) if rule.metric.kind == "above" else (lambda a, b: a < b)
        return 2 if worse(v, rule.fail) else 1 if worse(v, rule.warn) else 0

    for i, (n, d, b) in enumerate(values):
        worst = max(
            level(n, "image.rms_noise", 1e3), level(d, "image.dynamic_range"), level(b, "image.beam_major"), 0
        )
        assert graded["grade"][i] == ["good", "warn", "fail"][worst]
        assert int(graded["n_not_assessed"][i]) == sum(v is None for v in (n, d, b))


# ------------------------------------------------------------------------------------ client.qa
async def test_qa_images_grade_matches_the_database(newer_client: AsyncClient, site: DemoSite) -> None:
    graded = await newer_client.qa.images()
    rows = query(
        site.products_db,
        "SELECT i.id, COALESCE(q.rms_noise, i.noise_jy) FROM images AS i LEFT JOIN image_qa AS q ON q.image_path = i.path",
    )
    noise = dict(rows)
    assert len(graded) == len(noise) > 100
    assert set(graded["grade"]) >= {"good", "warn", "fail"}
    for row in graded.itertuples():
        value = noise[row.id]
        if value is None:
            assert row.rms_noise_check == "not assessed"
        elif value * 1e3 > 3.0:
            assert row.grade == "fail" and f"rms_noise {round(value * 1e3, 2):g} mJy > 3 mJy" in row.reasons
        elif value * 1e3 > 2.0:
            assert row.grade in ("warn", "fail") and row.rms_noise_check == "warn"
    # One image, the same answer as the bulk call.
    for image_id in graded["id"].iloc[::37]:
        one = await newer_client.qa.image(int(image_id))
        bulk = graded[graded["id"] == image_id].iloc[0]
        assert (one.grade, one.summary) == (bulk["grade"], bulk["summary"])
        assert one.flags == (() if pd.isna(bulk["reasons"]) else tuple(bulk["reasons"].split("; ")))
        assert "rms_noise_jy" in one.metrics and one.checks["image.rms_noise"] == bulk["rms_noise_check"]
    fails = await newer_client.qa.images(grade="fail")
    assert len(fails) == (graded["grade"] == "fail").sum() and set(fails["grade"]) == {"fail"}
    card = (await newer_client.qa.image(int(fails["id"].iloc[0])))._repr_html_()
    assert ("fail" in card and "rms_noise" in card) or "beam" in card


async def test_rules_per_call_change_grades(newer_client: AsyncClient) -> None:
    default = await newer_client.qa.images()
    lenient = await newer_client.qa.images(rules={"image.rms_noise": {"warn": 50.0, "fail": 100.0}})
    assert (lenient["rms_noise_check"] == "fail").sum() == 0 < (default["rms_noise_check"] == "fail").sum()


async def test_qa_ms_broken_json_is_not_assessed_and_the_rest_still_grades(
    newer_client: AsyncClient, site: DemoSite
) -> None:
    broken = query(site.products_db, "SELECT ms_path FROM calibration_qa WHERE NOT json_valid(bp_metrics)")
    assert broken, "the demo keeps one broken bp_metrics blob"
    summary = await newer_client.qa.ms(broken[0][0], as_of=AS_OF)
    assert "bp_amp_rms: bp_metrics is not valid JSON" in summary.not_assessed
    assert summary.checks["calibration.bp_amp_rms"] == "not assessed"
    assert summary.checks["calibration.flagged_fraction"] in ("pass", "warn", "fail")
    assert summary.grade in ("good", "warn", "fail") and summary.stage is not None


async def test_qa_ms_list_flags_stuck_and_failed_ms(newer_client: AsyncClient, site: DemoSite) -> None:
    graded = await newer_client.qa.ms_list(as_of=AS_OF)
    stuck_db = {
        path
        for path, updated in query(
            site.products_db,
            "SELECT path, stage_updated_at FROM ms_index WHERE status IN ('pending', 'in_progress')",
        )
        if (NOW.timestamp() - updated) / 3600 > 24
    }
    stuck = set(graded.loc[graded["stuck_check"] == "fail", "ms_path"])
    assert stuck == stuck_db and stuck
    failed_db = {p for (p,) in query(site.products_db, "SELECT path FROM ms_index WHERE status = 'failed'")}
    assert set(graded.loc[graded["status_check"] == "fail", "ms_path"]) == failed_db
    assert (graded.loc[graded["ms_path"].isin(failed_db), "grade"] == "fail").all()


async def test_qa_job_has_status_config_and_reasons(newer_client: AsyncClient, site: DemoSite) -> None:
    (run_id,) = query(site.products_db, "SELECT run_id FROM jobs WHERE status = 'failed' LIMIT 1")[0]
    summary = await newer_client.qa.job(run_id, as_of=AS_OF)
    assert summary.grade == "fail" and "status failed" in summary.flags
    assert summary.queue_status == "failed" and isinstance(summary.pipeline_config, dict)
    graded = await newer_client.qa.jobs(as_of=AS_OF)
    assert set(graded.loc[graded["status"] == "failed", "grade"]) == {"fail"}


async def test_unknown_objects_and_bad_arguments(newer_client: AsyncClient) -> None:
    with pytest.raises(RecordNotFoundError):
        await newer_client.qa.image(10**9)
    with pytest.raises(RecordNotFoundError):
        await newer_client.qa.ms("/no/such.ms")
    with pytest.raises(RecordNotFoundError):
        await newer_client.qa.job("job-1999-01-01-000000")
    with pytest.raises(ValidationError, match="unknown grade"):
        await newer_client.qa.images(grade="excellent")
    with pytest.raises(ValidationError, match="rules must be"):
        await newer_client.qa.images(rules=42)  # type: ignore[arg-type]


async def test_older_schema_grades_from_the_images_table(older_site: DemoSite) -> None:
    async with AsyncClient(**older_site.settings_kwargs()) as client:
        graded = await client.qa.images()
        assert len(graded) and graded["rms_noise_check"].isin(["pass", "warn", "fail", "not assessed"]).all()
        assert (graded["num_sources_check"].isin(["not assessed", "n/a"])).all()
        ms = await client.qa.ms_list(as_of=AS_OF)
        assert ms["flagged_fraction_check"].isin(["not assessed", "n/a"]).all()


# -------------------------------------------------------------------------------------- reports
async def test_report_counts_and_sections(newer_client: AsyncClient, tmp_path: Path) -> None:
    since, until = "2026-11-29T00:00", "2026-11-30T12:00"
    steps: list[str] = []
    report = await newer_client.qa.report(
        since=since, until=until, as_of=AS_OF, progress=lambda s, d, t: steps.append(s)
    )
    images = await newer_client.qa.images(since=since, until=until)
    assert report.totals["images"] == {  # the demo's sign-offs count: final grades
        g: int((images["final_grade"] == g).sum()) for g in ("good", "warn", "fail", "not assessed")
    }
    assert report.signed_off["images"] == int(images["signoff_grade"].notna().sum()) > 0
    assert int(report.images_per_night.to_numpy().sum()) == len(images)
    assert report.worst_images["rms_noise_mjy"].is_monotonic_decreasing
    assert len(report.failed_jobs) and report.failed_jobs["first_error"].notna().any()
    assert any("tclean" in str(e) or "failed" in str(e) for e in report.failed_jobs["first_error"])
    assert steps[0] == "images" and len(steps) == 5
    markdown = report.to_markdown(tmp_path / "report.md")
    assert (tmp_path / "report.md").read_text() == markdown
    for heading in (
        "## Worst images by noise",
        "## Failing checks",
        "## Measurement sets stuck in a stage",
        "## Failed jobs",
    ):
        assert heading in markdown
    page = report.to_html(tmp_path / "report.html")
    assert page.count('src="data:image/png;base64,') == 3 and "http" not in page.split("<body>")[1]


async def test_empty_range_gives_an_empty_report_that_says_so(newer_client: AsyncClient) -> None:
    report = await newer_client.qa.report(since="2001-01-01", until="2001-01-02")
    assert report.empty and "nothing to grade" in report.notes[0]
    assert "nothing to grade" in report.to_markdown() and "<img" not in report._repr_html_()
    text = repr(report)  # a notebook's plain-text output and a terminal show this
    assert "stuck MS: none" in text and "nothing to grade" in text
    assert "Empty DataFrame" not in text and "images: 0;" in text


async def test_a_reports_text_form_summarises_its_counts(newer_client: AsyncClient) -> None:
    report = await newer_client.qa.report(since="2026-11-29", as_of=AS_OF)
    text = repr(report)
    assert text.startswith(f"<{report.title}") and len(text.splitlines()) < 12
    images = report.totals["images"]
    assert f"images: {sum(images.values())} (" in text
    assert all(f"{grade} {n}" in text for grade, n in images.items() if n)
    assert f"failed jobs: {len(report.failed_jobs)};" in text and len(report.failed_jobs)


async def test_report_refuses_to_overwrite_a_database(
    newer_client: AsyncClient, site: DemoSite, tmp_path: Path
) -> None:
    report = await newer_client.qa.report(since="2001-01-01", until="2001-01-02")
    copy = tmp_path / "looks-like.html"
    shutil.copy(site.products_db, copy)
    with pytest.raises(ValidationError, match="SQLite database"):
        report.to_html(copy)
    with pytest.raises(ValidationError, match="must end in"):
        report.to_html(site.products_db)
    with pytest.raises(FileNotAccessibleError, match="does not exist"):
        report.to_html(tmp_path / "no" / "r.html")


def test_contimg_report_writes_html_with_a_progress_bar(site: DemoSite, tmp_path: Path) -> None:
    out = tmp_path / "night.html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "toolkit",
            "report",
            "--since",
            "2026-11-29",
            "--until",
            "2026-11-30T12:00",
            "--out",
            str(out),
        ],
        env={**os.environ, **site.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "QA report" in result.stderr and "4/4" in result.stderr
    assert f"wrote {out}" in result.stdout and out.read_text().startswith("<!DOCTYPE html>")
    bad = subprocess.run(
        [sys.executable, "-m", "toolkit", "report", "--out", str(site.products_db)],
        env={**os.environ, **site.env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1 and "ValidationError" in bad.stderr and "Traceback" not in bad.stderr


def test_blocking_client_has_qa(site: DemoSite) -> None:
    with Client(**site.settings_kwargs()) as client:
        graded = client.qa.images(limit=5)
        assert len(graded) == 5 and "grade" in graded
        assert client.qa.report(since="2001-01-01", until="2001-01-02").empty


async def test_report_html_renders_with_its_plots_in_chromium(
    newer_client: AsyncClient, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    out = tmp_path / "report.html"
    (await newer_client.qa.report(since="2026-11-29", as_of=AS_OF)).to_html(out)
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=chromium_path(),
            args=CHROMIUM_ARGS,
        )
        try:
            page = await browser.new_page()
            failed: list[str] = []
            page.on("requestfailed", lambda r: failed.append(r.url))
            await page.goto(out.as_uri())
            images = await page.evaluate(
                "Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])"
            )
            assert [alt for alt, *_ in images] == ["grades per night", "failing checks", "flagged fraction"]
            assert all(done and w >= 300 and h >= 150 for _, done, w, h in images), images
            assert (await page.inner_text("h1")).startswith("QA report: 2026-11-29")
            assert await page.locator("td.grade-fail").count() > 0
            assert failed == []
        finally:
            await browser.close()
