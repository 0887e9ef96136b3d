"""client.notes on both notes backends (a SQLite file, a database on the real PostgreSQL server), over the
demo site's real products database."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from toolkit import (
    AsyncClient,
    Client,
    NotesUnavailableWarning,
    NotesWriteError,
    RecordNotFoundError,
    ValidationError,
)
from toolkit.demo import DemoSite

from ..reliability.conftest import digests


def _kwargs(site: DemoSite, notes: Path | str, **more: Any) -> dict[str, Any]:
    return {**site.settings_kwargs(), "notes_db": notes, "user": "alice", **more}


@pytest.fixture
async def client(site: DemoSite, notes_location: Path | str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(**_kwargs(site, notes_location)) as c:
        yield c


async def test_each_operation_is_an_event_and_the_current_state_follows(client: AsyncClient) -> None:
    images = await client.images.list(limit=3)
    image = await client.images.get(int(images["id"][0]))
    await client.notes.comment(image, "sidelobes at the edge")
    await client.notes.tag(("image", int(images["id"][0])), "rfi", "edge")
    await client.notes.untag(("image", image.path), "edge")
    await client.notes.sign_off(image, "warn", "noise high: RFI storm; accepted")
    await client.notes.clear_sign_off(image, "re-imaged")
    await client.notes.sign_off(image, "good", "re-imaged: fine")

    history = await client.notes.history(image)
    assert list(history["action"]) == [
        "comment", "tag", "tag", "untag", "sign_off", "clear_sign_off", "sign_off",
    ]  # fmt: skip
    assert history["created_at"].is_monotonic_increasing
    assert set(history["author"]) == {"alice"}
    assert str(history["created_at"].dt.tz) == "UTC"

    current = await client.notes.list(target=image)
    assert sorted(current["kind"]) == ["comment", "sign_off", "tag"]
    assert current.loc[current["kind"] == "tag", "tag"].tolist() == ["rfi"]
    assert current.loc[current["kind"] == "sign_off", "grade"].tolist() == ["good"]
    assert current.loc[current["kind"] == "sign_off", "text"].tolist() == ["re-imaged: fine"]

    listed = await client.images.list(limit=3)
    row = listed[listed["path"] == image.path].iloc[0]
    assert row["tags"] == "rfi" and row["n_comments"] == 1
    others = listed[listed["path"] != image.path]
    assert (others["tags"] == "").all() and (others["n_comments"] == 0).all()

    summary = await client.qa.image(image.path)
    assert (summary.signoff_grade, summary.signoff_by, summary.final_grade) == ("good", "alice", "good")
    assert summary.signoff_reason == "re-imaged: fine"


async def test_every_kind_of_target(client: AsyncClient, site: DemoSite) -> None:
    ms = (await client.ms.list(limit=1))["path"][0]
    job = (await client.jobs.list(limit=1))["run_id"][0]
    cal = (await client.cal.list())["path"][0]
    source = await client.sources.get(site.transient_source)
    await client.notes.comment(("ms", ms), "flags heavy")
    await client.notes.comment(await client.jobs.get(job), "slow")
    await client.notes.comment(("cal", cal), "phase wraps")
    await client.notes.classify(source, "transient", "rises in one night")
    listed = await client.notes.list()
    assert sorted(listed["target_kind"]) == ["cal", "job", "ms", "source"]
    assert listed.loc[listed["target_kind"] == "job", "target"].item() == job
    assert (await client.ms.list(search=ms.rsplit("/", 1)[1]))["n_comments"].tolist() == [1]
    assert (await client.jobs.list(limit=1))["n_comments"].tolist() == [1]
    labelled = await client.sources.list(label="transient")
    assert labelled["source_id"].tolist() == [site.transient_source]
    assert labelled["label"].tolist() == ["transient"]
    candidates = (await client.sources.eta_v()).candidates
    assert candidates.set_index("source_id")["label"].get(site.transient_source) == "transient"
    assert candidates["label"].isna().sum() == len(candidates) - 1
    sources, _ = await client.sources.two_epoch()
    assert "label" in sources.columns
    with pytest.raises(ValidationError, match="labels are for sources"):
        await client.notes.classify(("ms", ms), "transient")


async def test_a_target_not_in_the_products_database_writes_nothing(client: AsyncClient) -> None:
    path = (await client.images.list(limit=1))["path"][0]
    for target in [("image", 10**9), ("image", "/nowhere.fits"), ("ms", "/no.ms"), ("source", "J0"),
                   ("job", "job-1999-01-01-000000"), ("cal", "/no.bcal")]:  # fmt: skip
        with pytest.raises(RecordNotFoundError):
            await client.notes.comment(target, "x")

    async def batch_with_a_missing_target() -> None:
        async with client.notes.batch() as b:
            b.comment(("image", path), "fine")
            b.comment(("image", "/nowhere.fits"), "missing")

    with pytest.raises(RecordNotFoundError, match="1 of the 2 image targets"):
        await batch_with_a_missing_target()
    assert len(await client.notes.list()) == 0


async def test_a_batch_is_all_or_nothing_and_one_transaction(client: AsyncClient) -> None:
    images = await client.images.list(limit=300)
    assert len(images) == 300

    async def batch_that_fails_inside() -> None:
        async with client.notes.batch() as b:
            for path in images["path"]:
                b.sign_off(("image", path), "good", "night checked")
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        await batch_that_fails_inside()
    assert len(await client.notes.list()) == 0
    async with client.notes.batch() as b:
        for path in images["path"]:
            b.sign_off(("image", path), "good", "night checked")
    assert len(b.events) == 300 and len({e.created_at for e in b.events}) == 1
    graded = await client.qa.images(final_grade="good")
    assert set(images["path"]) <= set(graded["path"])
    signed = graded[graded["signoff_grade"].notna()]
    assert len(signed) == 300 and (signed["signoff_by"] == "alice").all()
    # final_grade is the sign-off where there is one, the computed grade elsewhere
    every = await client.qa.images()
    rest = every[every["signoff_grade"].isna()]
    assert (rest["final_grade"] == rest["grade"]).all()
    assert len(await client.qa.images(final_grade=["warn", "fail"])) == len(rest[rest["grade"] != "good"])


async def test_two_sign_offs_in_turn_both_kept_the_later_current(
    site: DemoSite, notes_location: Path | str
) -> None:
    async with (
        AsyncClient(**_kwargs(site, notes_location, user="alice")) as a,
        AsyncClient(**_kwargs(site, notes_location, user="bob")) as b,
    ):
        path = (await a.images.list(limit=1))["path"][0]
        await a.notes.sign_off(("image", path), "fail", "beam is wrong")
        await b.notes.sign_off(("image", path), "warn", "beam fine after re-imaging")
        history = await a.notes.history(("image", path))
        assert history[["author", "grade"]].values.tolist() == [["alice", "fail"], ["bob", "warn"]]
        row = (await a.qa.images()).set_index("path").loc[path]
        assert (row["signoff_grade"], row["signoff_by"], row["final_grade"]) == ("warn", "bob", "warn")


@pytest.mark.parametrize(
    ("call", "rule"),
    [
        (lambda n, t: n.comment(t, ""), "comment must be non-empty"),
        (lambda n, t: n.comment(t, "   "), "comment must be non-empty"),
        (lambda n, t: n.comment(t, "x" * 10_001), "at most 10,000"),
        (lambda n, t: n.sign_off(t, "excellent", "why"), "unknown grade"),
        (lambda n, t: n.sign_off(t, "good", ""), "needs a reason"),
        (lambda n, t: n.sign_off(t, "good", None), "needs a reason"),
        (lambda n, t: n.clear_sign_off(t, ""), "needs a reason"),
        (lambda n, t: n.tag(t, "has space"), "no whitespace"),
        (lambda n, t: n.tag(t, "a\tb"), "no whitespace"),
        (lambda n, t: n.tag(t, "x" * 65), "at most 64"),
        (lambda n, t: n.tag(t), "at least one tag"),
        (lambda n, t: n.comment(("galaxy", 1), "x"), "unknown target kind"),
        (lambda n, t: n.comment(42, "x"), "a target is a record"),
        (lambda n, t: n.list(kind="stuff"), "unknown kind"),
    ],
)
async def test_bad_input_is_a_validation_error_naming_the_rule(
    client: AsyncClient, call: Any, rule: str
) -> None:
    target = ("image", (await client.images.list(limit=1))["path"][0])
    with pytest.raises(ValidationError, match=rule):
        await call(client.notes, target)
    assert len(await client.notes.list()) == 0


async def test_labels_come_from_a_configurable_vocabulary(site: DemoSite, notes_location: Path | str) -> None:
    async with AsyncClient(**_kwargs(site, notes_location)) as c:
        with pytest.raises(ValidationError, match="unknown label 'bogus'; labels are transient"):
            await c.notes.classify(("source", site.transient_source), "bogus")
    async with AsyncClient(**_kwargs(site, notes_location, note_labels="flare,pulsar")) as c:
        await c.notes.classify(("source", site.transient_source), "flare")
        with pytest.raises(ValidationError, match="labels are flare, pulsar"):
            await c.notes.classify(("source", site.transient_source), "transient")


async def test_export_then_import_elsewhere_and_twice_changes_nothing(
    client: AsyncClient, site: DemoSite, tmp_path: Path
) -> None:
    images = await client.images.list(limit=5)
    async with client.notes.batch() as b:
        for path in images["path"]:
            b.tag(("image", path), "night-1")
        b.sign_off(("image", images["path"][0]), "fail", "streaks")
        b.untag(("image", images["path"][1]), "night-1")
    await client.notes.comment(("image", images["path"][2]), 'quotes " and unicode ü∂')
    out = tmp_path / "notes.jsonl"
    assert await client.notes.export(out) == 8
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["action"] for line in lines][-1] == "comment"

    # the other backend as the receiving site
    other: Path | str = tmp_path / "other.sqlite"
    async with AsyncClient(**_kwargs(site, other, user="carol")) as receiver:
        first = await receiver.notes.import_(out)
        assert (first.read, first.added, first.already_present) == (8, 8, 0)
        again = await receiver.notes.import_(out)
        assert (again.added, again.already_present) == (0, 8)
        pd.testing.assert_frame_equal(await receiver.notes.list(), await client.notes.list())
    # an export is refused over an SQLite file, and a bad file is refused whole
    database_named_jsonl = tmp_path / "db.jsonl"
    database_named_jsonl.write_bytes(site.products_db.read_bytes()[:4096])
    with pytest.raises(ValidationError, match="SQLite database"):
        await client.notes.export(database_named_jsonl)
    with pytest.raises(ValidationError, match=r"must end in \.jsonl"):
        await client.notes.export(tmp_path / "notes.csv")
    broken = tmp_path / "broken.jsonl"
    broken.write_text(out.read_text() + '{"event_id": "zz"}\n')
    with pytest.raises(ValidationError, match="line 9"):
        await client.notes.import_(broken)


async def test_import_of_targets_this_site_lacks(client: AsyncClient, tmp_path: Path) -> None:
    path = (await client.images.list(limit=1))["path"][0]
    await client.notes.comment(("image", path), "kept")
    out = tmp_path / "x.jsonl"
    await client.notes.export(out)
    line = json.loads(out.read_text())
    line.update(event_id="f" * 32, target="/elsewhere/image.fits")
    out.write_text(out.read_text() + json.dumps(line) + "\n")
    with pytest.raises(RecordNotFoundError, match="elsewhere"):
        await client.notes.import_(out)
    done = await client.notes.import_(out, missing="skip")
    assert (done.read, done.added, done.already_present, done.skipped) == (2, 0, 1, 1)


async def test_listings_with_tag_filters_match_pages(client: AsyncClient) -> None:
    images = await client.images.list(limit=40)
    async with client.notes.batch() as b:
        for path in images["path"][::3]:
            b.tag(("image", path), "odd")
    tagged = await client.images.list(tag="odd")
    assert sorted(tagged["path"]) == sorted(images["path"][::3])
    assert (tagged["tags"] == "odd").all()
    page = await client.images.page({"tag": "odd"}, size=5)
    assert page.count == len(tagged) and list(page.rows["path"]) == list(tagged["path"][:5])
    assert len(await client.images.list(tag="nobody-uses-this")) == 0
    # the cached listing follows the notes: untagging shows at once
    await client.notes.untag(("image", tagged["path"][0]), "odd")
    assert len(await client.images.list(tag="odd")) == len(tagged) - 1


async def test_writes_never_touch_the_pipeline_databases(site: DemoSite, tmp_path: Path) -> None:
    """Thousands of annotations, then the pipeline's files hashed again (the session's check hashes them too)."""
    before = digests(site)
    async with AsyncClient(**_kwargs(site, tmp_path / "n.sqlite")) as c:
        images = await c.images.list()
        async with c.notes.batch() as b:
            for path in images["path"]:
                b.sign_off(("image", path), "good", "bulk")
                b.tag(("image", path), "bulk")
                b.comment(("image", path), "bulk comment")
        assert len(b.events) == 3 * len(images) >= 900
    assert digests(site) == before


async def test_notes_db_that_is_a_pipeline_database_or_not_ours_is_refused(
    site: DemoSite, tmp_path: Path
) -> None:
    products_before = site.products_db.read_bytes()
    async with AsyncClient(**_kwargs(site, site.products_db)) as c:
        with pytest.raises(NotesWriteError, match="pipeline's databases"):
            await c.notes.comment(("source", site.transient_source), "x")
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE mine (x)")
    async with AsyncClient(**_kwargs(site, other)) as c:
        with pytest.raises(NotesWriteError, match="not a notes database"):
            await c.notes.comment(("source", site.transient_source), "x")
    async with AsyncClient(**_kwargs(site, tmp_path / "no" / "such" / "n.sqlite")) as c:
        with pytest.raises(NotesWriteError, match="folder does not exist"):
            await c.notes.comment(("source", site.transient_source), "x")
        assert not (tmp_path / "no").exists()
    text = tmp_path / "text.sqlite"
    text.write_text("my thesis\n" * 1000)
    async with AsyncClient(**_kwargs(site, text)) as c:
        with pytest.raises(NotesWriteError):
            await c.notes.comment(("source", site.transient_source), "x")
    assert text.read_text() == "my thesis\n" * 1000
    assert site.products_db.read_bytes() == products_before


async def test_events_cannot_be_changed_and_a_newer_schema_is_refused(site: DemoSite, tmp_path: Path) -> None:
    notes = tmp_path / "n.sqlite"
    async with AsyncClient(**_kwargs(site, notes)) as c:
        await c.notes.comment(("source", site.transient_source), "first")
    with sqlite3.connect(notes) as conn:
        for statement in ("UPDATE events SET text = 'changed'", "DELETE FROM events"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
        assert conn.execute("SELECT value FROM notes_meta WHERE key = 'schema_version'").fetchone() == ("1",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        conn.execute("UPDATE notes_meta SET value = '99'")
    async with AsyncClient(**_kwargs(site, notes)) as c:
        with pytest.raises(NotesWriteError, match="schema version 99, newer"):
            await c.notes.comment(("source", site.transient_source), "second")
        assert (await c.notes.list())["text"].tolist() == ["first"]  # reads still work


async def test_events_cannot_be_changed_on_either_backend(site: DemoSite, notes_location: Path | str) -> None:
    async with AsyncClient(**_kwargs(site, notes_location)) as c:
        await c.notes.comment(("source", site.transient_source), "first")
    statements = ("UPDATE events SET text = 'changed'", "DELETE FROM events")
    if isinstance(notes_location, Path):
        with sqlite3.connect(notes_location) as conn:
            for statement in statements:
                with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                    conn.execute(statement)
        return
    import asyncpg

    conn = await asyncpg.connect(notes_location)
    try:
        for statement in statements:
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT value FROM notes_meta WHERE key = 'schema_version'") == "1"
    finally:
        await conn.close()


async def test_missing_or_unreadable_notes_leave_reads_working_with_na_and_one_warning(
    site: DemoSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with AsyncClient(**_kwargs(site, tmp_path / "absent.sqlite")) as c:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            images = await c.images.list(limit=5)
            await c.qa.images(limit=5)
            await c.sources.list(limit=5)
        assert [w.category for w in caught] == [NotesUnavailableWarning]
        assert images["tags"].isna().all() and images["n_comments"].isna().all()
        assert len(images) == 5
        assert not (tmp_path / "absent.sqlite").exists()  # a read never creates it
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"\x00not a database" * 100)
    async with AsyncClient(**_kwargs(site, garbage)) as c:
        with pytest.warns(NotesUnavailableWarning, match="cannot be read"):
            qa = await c.qa.images(limit=5)
        assert qa["signoff_grade"].isna().all() and (qa["final_grade"] == qa["grade"]).all()
    # the default location (nothing configured) that does not exist yet: no notes, no warning
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    kwargs = _kwargs(site, tmp_path)
    del kwargs["notes_db"]
    async with AsyncClient(**kwargs) as c:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            images = await c.images.list(limit=5)
        assert (images["tags"] == "").all() and (images["n_comments"] == 0).all()
        await c.notes.comment(("source", site.transient_source), "first note on this machine")
    assert (tmp_path / "data" / "contimg" / "notes.sqlite").exists()


async def test_the_demo_site_ships_annotations(site: DemoSite) -> None:
    assert site.notes_db is not None and site.notes_db.exists()
    async with AsyncClient(**site.settings_kwargs()) as c:
        listed = await c.notes.list()
        assert {"comment", "tag", "sign_off", "label"} <= set(listed["kind"])
        assert (await c.sources.list(label="transient"))["source_id"].tolist() == [site.transient_source]


def test_blocking_client_batch_is_a_with_block(site: DemoSite, tmp_path: Path) -> None:
    with Client(**_kwargs(site, tmp_path / "n.sqlite")) as client:
        paths = client.images.list(limit=10)["path"]
        with client.notes.batch() as b:
            for path in paths:
                b.sign_off(("image", path), "good", "ok")
        assert len(b.events) == 10

        def batch_that_fails_inside() -> None:
            with client.notes.batch() as b2:
                b2.comment(("image", paths[0]), "never written")
                raise KeyError("oops")

        with pytest.raises(KeyError):
            batch_that_fails_inside()
        assert len(client.notes.list()) == 10
        tagged = client.notes.tag(("image", paths[0]), "a", "b")
        assert [e.tag for e in tagged] == ["a", "b"]


async def test_concurrent_batches_in_one_process_all_land(client: AsyncClient) -> None:
    paths = (await client.images.list(limit=20))["path"]

    async def writer(n: int) -> None:
        for path in paths:
            await client.notes.comment(("image", path), f"writer {n}")

    await asyncio.gather(*(writer(n) for n in range(4)))
    counts = (await client.images.list(limit=20))["n_comments"]
    assert (counts == 4).all()


async def test_report_counts_final_grades_and_lists_sign_offs_and_comments(client: AsyncClient) -> None:
    before = await client.qa.report(since="2000-01-01")  # everything, not only the last night
    graded = await client.qa.images()
    failed = graded[graded["grade"] == "fail"]["path"].tolist()
    good = graded[graded["grade"] == "good"]["path"].tolist()
    assert failed and good and not before.sign_offs.shape[0] and not before.comments.shape[0]
    async with client.notes.batch() as b:
        b.sign_off(("image", failed[0]), "good", "RFI storm; the source counts are fine")
        b.sign_off(("image", good[0]), "good", "looked at it")
        b.comment(("image", failed[0]), "re-check after the next calibration")
        b.comment(("ms", (await client.ms.list(limit=1))["path"][0]), "flags heavy | upper band")
    report = await client.qa.report(since="2000-01-01")
    assert report.totals["images"]["fail"] == before.totals["images"]["fail"] - 1
    assert report.totals["images"]["good"] == before.totals["images"]["good"] + 1
    assert (report.signed_off["images"], report.overridden["images"]) == (2, 1)
    assert int(report.images_per_night["good"].sum()) == report.totals["images"]["good"]
    signed = report.sign_offs.set_index("target")
    assert signed.loc[failed[0], ["grade", "signoff_grade", "signoff_by"]].tolist() == [
        "fail",
        "good",
        "alice",
    ]
    assert sorted(report.comments["kind"]) == ["image", "ms"]
    markdown = report.to_markdown()
    assert "## Sign-offs" in markdown and "RFI storm; the source counts are fine" in markdown
    assert "flags heavy \\| upper band" in markdown  # a comment cannot break the Markdown table
    page = report.to_html()
    assert "<h2>Comments</h2>" in page and "re-check after the next calibration" in page

    card = (await client.qa.image(failed[0]))._repr_html_()
    assert "signed off good</b> by alice" in card and "(computed: fail)" in card
    plain = (await client.qa.image(good[1]))._repr_html_()
    assert "signed off" not in plain


async def test_listings_after_each_write_match_a_fresh_client(
    client: AsyncClient, site: DemoSite, notes_location: Path | str
) -> None:
    """The summary a client keeps is refreshed for the targets each write touched; it must equal the one a new
    client builds from every event."""
    paths = (await client.images.list(limit=6))["path"].tolist()
    columns = ["path", "tags", "n_comments", "signoff_grade", "signoff_by", "signoff_reason", "final_grade"]
    steps: list[Any] = [
        lambda n: n.sign_off(("image", paths[0]), "fail", "beam is wrong"),
        lambda n: n.tag(("image", paths[1]), "rfi", "edge"),
        lambda n: n.comment(("image", paths[0]), "re-image"),
        lambda n: n.untag(("image", paths[1]), "rfi"),
        lambda n: n.sign_off(("image", paths[0]), "good", "re-imaged"),
        lambda n: n.clear_sign_off(("image", paths[0]), "wrong image"),
        lambda n: n.tag(("image", paths[2]), "edge"),
    ]
    for step in steps:
        await client.qa.images()  # the summary is cached before each write
        await step(client.notes)
        kept = (await client.qa.images()).merge(await client.images.list(), on="path", suffixes=("", "_l"))
        async with AsyncClient(**_kwargs(site, notes_location)) as fresh:
            new = (await fresh.qa.images()).merge(await fresh.images.list(), on="path", suffixes=("", "_l"))
        pd.testing.assert_frame_equal(
            kept[columns].sort_values("path", ignore_index=True),
            new[columns].sort_values("path", ignore_index=True),
        )
    row = kept.set_index("path").loc[paths[0]]
    assert pd.isna(row["signoff_grade"]) and row["n_comments"] == 1
    assert kept.set_index("path").loc[paths[1], "tags"] == "edge"
