"""``build_demo_site``: the generators in order (one random stream), written to a site's databases and logs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..mjd import unix_to_mjd
from . import calibration, jobs, observations, products, qa, queue
from .image_files import write_image_files
from .notes import demo_events, write_notes
from .site import SIZES, DemoSite, DemoSize
from .tables import CAL_INDEXES, EXTRA_TABLES, INDEXES, JOB_INDEXES, Schema, open_new, write_table

Progress = Callable[[str, int, int], None]
STEPS = ("measurement sets", "images", "photometry", "jobs and logs", "QA", "calibration")
# A few early jobs keep their log inline in the jobs table (newer schema) instead of in a file.
INLINE_LOGS = 3


def build_demo_site(
    root: str | Path,
    *,
    scale: str | DemoSize = "small",
    seed: int = 110,
    schema: Schema = "newer",
    calibration_in_products: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> DemoSite:
    """Build (or rebuild) a demo site in ``root`` and return its paths.

    ``scale`` is ``"small"`` (tests), ``"bench"`` (10,000 images, 1,000,000 photometry rows) or a
    :class:`DemoSize`. ``schema="older"`` builds the older layout: no ``jobs`` table, short ``images``,
    ``ms_index`` and ``photometry`` tables; ``schema="seed"`` the newer layout with the seed-era ``photometry``
    (15 columns, NOT NULL where the first pipeline always wrote a value). ``calibration_in_products`` keeps ``caltables`` inside the products
    database (newer deployments) instead of a separate registry. ``now`` anchors the time line (default: the
    current hour), so "last night" in the demo is last night.

    The generators draw from one random stream in a fixed order, so a seed always builds the same site
    (``tests/demo/test_fingerprint.py`` holds it to that).
    """
    size = SIZES[scale] if isinstance(scale, str) else scale
    if now is None:
        now = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0)
    root = Path(root)
    log_dir = root / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    now_unix = now.timestamp()

    def tick(step: int) -> None:
        if progress is not None:
            progress(STEPS[min(step, len(STEPS) - 1)], step, len(STEPS))

    products_db = root / "products.sqlite3"
    conn = open_new(products_db)
    try:
        with conn:
            tick(0)
            obs = observations.measurement_sets(size, rng, now_unix, unix_to_mjd(now_unix))
            write_table(conn, "ms_index", schema, obs.data)
            tick(1)
            imgs = products.images(obs, size, rng)
            write_table(conn, "images", schema, imgs.data)
            tick(2)
            phot = products.photometry(obs, imgs, size, rng)
            write_table(conn, "photometry", schema, phot.data)
            tick(3)
            job_rows = jobs.jobs(obs, imgs, rng)
            texts = jobs.log_texts(job_rows, size.max_log_files, rng)
            if schema != "older":
                for k in range(INLINE_LOGS):
                    if job_rows["run_id"][k] in texts:
                        job_rows["logs"][k] = texts.pop(job_rows["run_id"][k])
                write_table(conn, "jobs", schema, job_rows)
                batch_rows, items = jobs.batches(job_rows, now_unix)
                write_table(conn, "batch_jobs", schema, batch_rows)
                write_table(conn, "batch_job_items", schema, items)
                for stmt in JOB_INDEXES:
                    conn.execute(stmt)
            for run_id, text in texts.items():
                (log_dir / f"{run_id}.log").write_text(text, encoding="utf-8")
            tick(4)
            if schema != "older":
                write_table(conn, "image_qa", schema, qa.image_qa(imgs, rng))
                write_table(conn, "calibration_qa", schema, qa.calibration_qa(obs, rng))
            for stmt in EXTRA_TABLES + INDEXES:
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO storage_locations (name, root) VALUES ('stage', '/stage/dsa110-contimg')"
            )
            tick(5)
            cal = calibration.caltables(obs, rng)
            if calibration_in_products:
                write_table(conn, "caltables", schema, cal)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()

    registry: Path | None = None
    if not calibration_in_products:
        registry = root / "cal_registry.sqlite3"
        rconn = open_new(registry)
        try:
            with rconn:
                write_table(rconn, "caltables", schema, cal)
                for stmt in CAL_INDEXES:
                    rconn.execute(stmt)
            rconn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            rconn.close()
    queue_db = root / "ingest_queue.sqlite3"
    qconn = open_new(queue_db)
    try:
        rows, files = queue.ingest_queue(obs, rng, now_unix)
        with qconn:
            qconn.executescript(queue.SCHEMA)
            qconn.executemany("INSERT INTO ingest_queue VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            qconn.executemany("INSERT INTO subband_files VALUES (?, ?, ?)", files)
        qconn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        qconn.close()
    notes_db = root / "notes.sqlite3"
    notes_rng = np.random.default_rng(seed + 1)  # its own stream: the pipeline's tables stay as they were
    write_notes(
        notes_db,
        demo_events(imgs.data, list(obs.data["path"]), phot.variable_sources, phot.transient_source, now,
                    notes_rng),
    )  # fmt: skip
    write_image_files(root, products_db, seed)
    tick(len(STEPS))
    return DemoSite(
        root=root,
        products_db=products_db,
        cal_registry_db=registry,
        log_dir=log_dir,
        variable_sources=phot.variable_sources,
        transient_source=phot.transient_source,
        queue_db=queue_db,
        notes_db=notes_db,
    )
