"""A stand-in for the pipeline: writing jobs that run in their own processes against a real database file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# One pipeline job: it opens the database, commits one row, checkpoints and exits (its locks go with it, so the
# reading process is then the file's only user: the moment a second SQLite copy opening it reset the WAL index).
WRITER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
    table, step, mode, source = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
    if table == "images":
        conn.execute(
            "INSERT INTO images (path, type, created_at) VALUES (?, 'image', 4102444800 + ?)",
            (f"/fresh/{step}.fits", step),
        )
    else:
        conn.execute(
            "INSERT INTO photometry (source_id, image_path, ra_deg, dec_deg, peak_jyb, measured_at, mjd, flux_jy)"
            " VALUES (?, ?, 10.0, 50.0, 0.1, 4102444800, 60000.0 + ?, 0.1)",
            (source, f"/fresh/{step}.fits", step),
        )
    busy, _, _ = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    print(busy, flush=True)
    """
)
MODES = ["PASSIVE", "FULL", "RESTART", "TRUNCATE"]
SOURCE = "J000000.1+545650.5"


def pipeline_job(db: Path, table: str, step: int, mode: str) -> int:
    """Run one writing job in its own process; the checkpoint's busy flag (0: it completed)."""
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(db), table, str(step), mode, SOURCE],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(done.stdout)
