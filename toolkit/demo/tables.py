"""Writing the generated columns as SQLite tables in the pipeline's layout (newer, older or seed-era schema).

The seed-era schema is the newer one but for ``photometry``: the first pipeline's 15 columns (no snr, rms or
quality columns), with NOT NULL on the columns it always wrote.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ..schema import NEWER, OLDER, Kind

Schema = Literal["newer", "older", "seed"]
SCHEMAS: tuple[Schema, ...] = ("newer", "older", "seed")
SEED_NOT_NULL = frozenset({"image_path", "ra_deg", "dec_deg", "peak_jyb", "measured_at"})

# Tables the pipeline has and the toolkit does not read: a site has them, so the demo does too.
EXTRA_TABLES = (
    "CREATE TABLE transient_candidates (id INTEGER PRIMARY KEY, source_name TEXT, ra_deg REAL, dec_deg REAL, "
    "detection_mjd REAL, significance REAL)",
    "CREATE TABLE monitoring_sources (name TEXT PRIMARY KEY, ra_deg REAL, dec_deg REAL)",
    "CREATE TABLE hdf5_file_index (path TEXT PRIMARY KEY, group_id TEXT, subband INTEGER)",
    "CREATE TABLE storage_locations (id INTEGER PRIMARY KEY, name TEXT, root TEXT)",
)
INDEXES = (
    "CREATE INDEX idx_ms_stage ON ms_index(stage)",
    "CREATE INDEX idx_ms_mid ON ms_index(mid_mjd)",
    "CREATE INDEX idx_images_ms ON images(ms_path)",
    "CREATE INDEX idx_images_created ON images(created_at)",
    "CREATE INDEX idx_phot_source ON photometry(source_id, mjd)",
    "CREATE INDEX idx_phot_image ON photometry(image_path)",
)
JOB_INDEXES = (
    "CREATE INDEX idx_jobs_ms ON jobs(ms_path)",
    "CREATE INDEX idx_jobs_created ON jobs(created_at)",
)
CAL_INDEXES = (
    "CREATE INDEX idx_cal_set ON caltables(set_name)",
    "CREATE INDEX idx_cal_valid ON caltables(valid_start_mjd, valid_end_mjd)",
)


def open_new(path: Path) -> sqlite3.Connection:
    """A fresh WAL database at ``path`` (an earlier build's file and its WAL are removed first)."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    return conn


def write_table(conn: sqlite3.Connection, table: str, schema: Schema, data: dict[str, Any]) -> None:
    """Create ``table`` with the schema's columns and insert ``data`` (column name -> values)."""
    columns = _columns_of(table, schema)
    _create_table(conn, table, columns, SEED_NOT_NULL if schema == "seed" and table == "photometry" else ())
    marks = ", ".join("?" for _ in columns)
    rows = zip(*(data[name] for name in columns), strict=True)
    conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def _sql_type(kind: Kind) -> str:
    return {"int": "INTEGER", "bool": "INTEGER", "real": "REAL", "time": "REAL"}.get(kind, "TEXT")


def _create_table(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], not_null: frozenset[str] | tuple[()] = ()
) -> None:
    kinds = dict(NEWER[table])
    defs = []
    for name in columns:
        if name == "id":
            defs.append("id INTEGER PRIMARY KEY")
        elif table == "ms_index" and name == "path":
            defs.append("path TEXT PRIMARY KEY")
        elif table == "caltables" and name == "path":
            defs.append("path TEXT UNIQUE")
        else:
            defs.append(f"{name} {_sql_type(kinds[name])}{' NOT NULL' if name in not_null else ''}")
    conn.execute(f"CREATE TABLE {table} ({', '.join(defs)})")


def _columns_of(table: str, schema: Schema) -> tuple[str, ...]:
    if schema == "older" and table in OLDER:
        return OLDER[table]
    if schema == "seed" and table == "photometry":
        return OLDER["photometry"]  # the 15 columns up to mosaic_path
    return tuple(name for name, _ in NEWER[table])
