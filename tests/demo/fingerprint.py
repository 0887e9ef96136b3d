"""A fingerprint of a demo site: every table's schema and rows, every log file's name and text."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path


def database_digest(path: Path) -> str:
    digest = hashlib.sha256()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        objects = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
        ).fetchall()
        for kind, name, sql in objects:
            digest.update(repr((kind, name, sql)).encode())
            if kind == "table":
                for row in conn.execute(f'SELECT * FROM "{name}" ORDER BY rowid'):
                    digest.update(repr(row).encode())
    finally:
        conn.close()
    return digest.hexdigest()


def site_digest(root: Path) -> dict[str, str]:
    """One digest per database file, and one for the log directory."""
    found = {p.name: database_digest(p) for p in sorted(root.glob("*.sqlite3"))}
    logs = hashlib.sha256()
    for log in sorted((root / "logs").glob("*")):
        logs.update(log.name.encode())
        logs.update(log.read_bytes())
    found["logs"] = logs.hexdigest()
    return found
