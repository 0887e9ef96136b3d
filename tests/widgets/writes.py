"""What the tests write to their own demo sites to play the pipeline (in another process, as it would)."""

from __future__ import annotations

# An image and a failed job of the last night: argv is the products database and the image's unix time
NIGHT_WRITER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
at = float(sys.argv[2])
conn.execute("INSERT INTO images (path, type, created_at) VALUES ('/fresh/appended.image.fits', 'image', ?)", (at,))
conn.execute(
    "INSERT INTO jobs (type, status, ms_path, run_id, created_at, finished_at) "
    "VALUES ('imaging', 'failed', '/fresh/appended.ms', 'job-appended-failure', ?, ?)",
    (at, at + 60),
)
"""
