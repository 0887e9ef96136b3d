"""Notes benchmarks (issue: sign-off and vetting): a batch sign-off of every image of the scaled site, qa.images()
with annotations joined against the same call with none, and 8 writer processes of 1,000 events each on both
notes backends."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from toolkit import AsyncClient
from toolkit.demo import DemoSite
from toolkit.notes.schema import COLUMNS, SQLITE_MIGRATIONS

from .harness import ROOT, Result, abest_of, report

WRITERS = 8
EVENTS_PER_WRITER = 1_000

# One writer process: waits for "go" on stdin, then adds its comments one event (one transaction) at a time,
# the way a team's notebooks write.
WRITER = """
import sys
from toolkit import Client
products, notes, target, count, name = sys.argv[1:6]
with Client(products_db=products, notes_db=notes, user=name) as client:
    print("ready", flush=True)
    sys.stdin.readline()
    for n in range(int(count)):
        client.notes.comment(("source", target), f"{name}: comment {n}")
print("done", flush=True)
"""


def _settings(site: DemoSite, notes: Path | str) -> dict[str, Any]:
    return {**site.settings_kwargs(), "notes_db": notes}


async def _batch_sign_off(site: DemoSite, folder: Path) -> tuple[Result, list[str]]:
    """Every image signed off in one batch, against the floor: the same rows inserted with one executemany in
    one sqlite3 transaction into a database with the same schema."""
    notes = folder / "signoff.sqlite"
    async with AsyncClient(**_settings(site, notes), user="bench") as client:
        await client.notes.comment(("image", 1), "the database exists before the timing")
        paths = (await client.images.list(limit=None))["path"].tolist()
        started = time.perf_counter()
        async with client.notes.batch() as batch:
            for path in paths:
                batch.sign_off(("image", path), "good", "night review: metrics within limits")
        ours = time.perf_counter() - started
        assert len(batch.events) == len(paths)
    with sqlite3.connect(notes) as source:
        rows = source.execute(f"SELECT {COLUMNS} FROM events WHERE action = 'sign_off'").fetchall()
    floor = folder / "floor.sqlite"
    conn = sqlite3.connect(floor, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        for statement in SQLITE_MIGRATIONS[1]:
            conn.execute(statement)
        marks = ", ".join("?" for _ in COLUMNS.split(","))
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(f"INSERT INTO events ({COLUMNS}) VALUES ({marks})", rows)
        conn.execute("COMMIT")
        floor_seconds = time.perf_counter() - started
    finally:
        conn.close()
    result = Result(
        f"batch sign-off of {len(paths):,} images (SQLite)",
        ours,
        floor_seconds,
        "the same rows by sqlite3 executemany, one transaction",
        "<= 1 s (targets checked, events built and written)",
        ours <= 1.0,
    )
    return result, paths


async def _qa_with_annotations(site: DemoSite, folder: Path, paths: list[str]) -> list[Result]:
    """qa.images() over every image with every one signed off (and a tenth commented and tagged) against the
    same call on an empty notes database."""
    annotated = folder / "signoff.sqlite"
    async with (
        AsyncClient(**_settings(site, annotated), user="bench") as client,
        client.notes.batch() as batch,
    ):
        for path in paths[::10]:
            batch.comment(("image", path), "sidelobes at the edge")
            batch.tag(("image", path), "rfi", "edge")
    empty = folder / "empty.sqlite"
    async with AsyncClient(**_settings(site, empty), user="bench") as client:
        await client.notes.comment(("image", paths[0]), "one note, so the database exists")
    async with (
        AsyncClient(**_settings(site, annotated), cache_bytes=0) as ours_client,
        AsyncClient(**_settings(site, empty), cache_bytes=0) as plain_client,
    ):
        await ours_client.qa.images()
        await plain_client.qa.images()
        ours, plain = [], []
        for _ in range(9):  # interleaved, so a noisy moment hits both; ~80 ms calls jitter by ~20 ms here
            ours.append(await abest_of(1, lambda: ours_client.qa.images()))
            plain.append(await abest_of(1, lambda: plain_client.qa.images()))
        frame = await ours_client.qa.images()
        assert frame["signoff_grade"].notna().all() and (frame["final_grade"] == "good").all()
        # The first call after a write rebuilds the per-target summary from every event of the kind
        rebuilt = []
        for n in range(3):
            await ours_client.notes.comment(("image", paths[n]), "a new note")
            rebuilt.append(await abest_of(1, lambda: ours_client.qa.images()))
    steady = Result(
        f"qa.images() over {len(frame):,} images, all signed off",
        min(ours),
        min(plain),
        "the same call with no annotations",
        "<= 1.2x",
        min(ours) / min(plain) <= 1.2,
    )
    after_write = Result(
        "  the same, first call after a note is written",
        min(rebuilt),
        min(plain),
        "the same call with no annotations",
        "reported (the targets the note touched are recomputed)",
        True,
    )
    return [steady, after_write]


def _writers(site: DemoSite, notes: str, target: str) -> float:
    """Seconds for WRITERS processes started together to add EVENTS_PER_WRITER comments each."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                str(site.products_db),
                notes,
                target,
                str(EVENTS_PER_WRITER),
                f"w{n}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(WRITERS)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", proc.stderr
    started = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"a writer failed: {err.strip().splitlines()[-1:]}")
    return time.perf_counter() - started


async def _concurrent_writers(site: DemoSite, notes: str) -> tuple[float, int]:
    """Events per second of the writers, and how many of their events are in the database afterwards."""
    async with AsyncClient(**_settings(site, notes), user="bench") as client:
        await client.notes.tag(("image", 1), "bench")  # created (schema and all) before the writers
        target = str((await client.sources.list(limit=1))["source_id"][0])
    seconds = await asyncio.to_thread(_writers, site, notes, target)
    async with AsyncClient(**_settings(site, notes)) as client:
        history = await client.notes.history(("source", target))
    present = int((history["action"] == "comment").sum())
    return WRITERS * EVENTS_PER_WRITER / seconds, present


async def _postgres_notes(admin: str) -> str:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute("DROP DATABASE IF EXISTS contimg_bench_notes")
        await conn.execute("CREATE DATABASE contimg_bench_notes")
    finally:
        await conn.close()
    return f"{admin.rsplit('/', 1)[0]}/contimg_bench_notes"


async def run(site: DemoSite) -> bool:
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="contimg-bench-notes-") as tmp:
        folder = Path(tmp)
        signed, paths = await _batch_sign_off(site, folder)
        results.append(signed)
        results += await _qa_with_annotations(site, folder, paths)
        expected = WRITERS * EVENTS_PER_WRITER
        lite_rate, lite_present = await _concurrent_writers(site, str(folder / "writers.sqlite"))
        admin = os.environ.get("CONTIMG_TEST_POSTGRES")
        if admin:
            pg_rate, pg_present = await _concurrent_writers(site, await _postgres_notes(admin))
        else:
            print("\nPostgreSQL notes writers skipped: no server (run through scripts/with-postgres)")
            pg_rate, pg_present = float("nan"), expected
        results.append(
            Result(
                f"{WRITERS} writer processes x {EVENTS_PER_WRITER:,} events, SQLite: events/s",
                lite_rate,
                pg_rate,
                "the same writers on PostgreSQL (events/s; the test server runs with fsync=off)",
                f"reported (higher is better); all {expected:,} events present",
                lite_present == expected and pg_present == expected,
                unit="events/s",
                note=f"present: {lite_present:,} on SQLite, {pg_present:,} on PostgreSQL",
            )
        )
    return report("Notes (scaled site)", results, "notes.json")
