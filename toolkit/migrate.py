"""``contimg migrate``: copy a SQLite products database into PostgreSQL, restartable without duplicates.

The SQLite file is only read (``mode=ro``). Each table is created with the same columns (INTEGER -> bigint,
REAL -> double precision, TEXT -> text, and the columns the toolkit knows hold JSON -> json (text kept as written); a blob that is
not valid JSON is kept as a JSON string, so nothing is lost), copied in batches with COPY, and its indexes
recreated, in one transaction per table. A bookkeeping table ``contimg_migration`` records each finished
table: a rerun skips those and copies the others again from empty, so an interrupted run never leaves
duplicates behind. A table that exists with other columns is refused, never overwritten.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from .db.postgres import redacted
from .db.sqlite import read_only_uri
from .errors import DatabaseConnectionError, FileNotAccessibleError, ValidationError
from .schema import NEWER

Progress = Callable[[str, int, int], None]  # table, rows copied so far, rows in the table
BATCH_ROWS = 50_000
_TYPES = {"INTEGER": "bigint", "REAL": "double precision", "TEXT": "text"}
_INDEX = re.compile(r"CREATE\s+(UNIQUE\s+)?INDEX\s+(\w+)\s+ON\s+(\w+)\s*\(([^)]*)\)", re.I)


@dataclass
class MigrationSummary:
    target: str
    copied: dict[str, int] = field(default_factory=dict)  # table -> rows copied in this run
    skipped: list[str] = field(default_factory=list)  # finished in an earlier run


def _json_columns(table: str) -> set[str]:
    return {name for name, kind in NEWER.get(table, ()) if kind == "json"}


def _pg_type(declared: str, json_column: bool) -> str:
    if json_column:
        return "json"
    return _TYPES.get(declared.strip().upper(), "text")


def _as_json(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    try:
        json.loads(text)
    except ValueError:
        return json.dumps(text)  # not JSON: kept as a JSON string holding the original text
    return text


def _converter(pg_type: str) -> Callable[[Any], Any]:
    if pg_type == "json":
        return _as_json
    if pg_type == "bigint":
        return lambda v: None if v is None else int(v)
    if pg_type == "double precision":
        return lambda v: None if v is None else float(v)
    return lambda v: None if v is None else str(v)


def _batches(
    conn: sqlite3.Connection, table: str, columns: list[str], size: int
) -> Iterator[list[tuple[Any, ...]]]:
    cursor = conn.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in columns)} FROM "{table}"')
    while rows := cursor.fetchmany(size):
        yield rows


async def migrate(
    source: str | os.PathLike[str],
    target: str,
    *,
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
) -> MigrationSummary:
    if not isinstance(source, str | os.PathLike):
        raise ValidationError(f"the SQLite database must be a path, not {source!r}")
    source = Path(source)
    if not os.path.isfile(source):  # noqa: ASYNC240 (one stat before the work; nothing else runs yet)
        raise FileNotAccessibleError(f"no SQLite database at {source}")
    if not isinstance(target, str) or not target.startswith(("postgresql://", "postgres://")):
        raise ValidationError(f"--to must be a postgresql:// URL, not {target!r}")
    lite = sqlite3.connect(read_only_uri(source), uri=True)
    summary = MigrationSummary(redacted(target))
    try:
        try:
            pg = await asyncpg.connect(target, server_settings={"default_transaction_read_only": "off"})
        except (OSError, asyncpg.PostgresError) as exc:
            raise DatabaseConnectionError(f"cannot connect to {redacted(target)}: {exc}") from None
        try:
            await pg.execute(
                "CREATE TABLE IF NOT EXISTS contimg_migration "
                "(table_name text PRIMARY KEY, source_rows bigint, finished_at timestamptz DEFAULT now())"
            )
            done = {
                r["table_name"]: r["source_rows"] for r in await pg.fetch("SELECT * FROM contimg_migration")
            }
            tables = [
                r[0]
                for r in lite.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
            ]
            for table in tables:
                total = int(lite.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
                if done.get(table) == total:
                    summary.skipped.append(table)
                    continue
                info = lite.execute(f'PRAGMA table_info("{table}")').fetchall()
                json_cols = _json_columns(table)
                names = [str(c[1]) for c in info]
                types = [_pg_type(str(c[2] or ""), str(c[1]) in json_cols) for c in info]
                keys = [str(c[1]) for c in sorted(info, key=lambda c: c[5]) if c[5]]
                definition = ", ".join(f'"{n}" {t}' for n, t in zip(names, types, strict=True))
                if keys:
                    definition += f", PRIMARY KEY ({', '.join(chr(34) + k + chr(34) for k in keys)})"
                converters = [_converter(t) for t in types]
                existing = [
                    r["column_name"]
                    for r in await pg.fetch(
                        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                        "AND table_name = $1 ORDER BY ordinal_position",
                        table,
                    )
                ]
                if existing and existing != names:
                    # Not a table an earlier run made: never overwrite what somebody else keeps.
                    raise ValidationError(
                        f"{redacted(target)} already has a table {table!r} with other columns ({', '.join(existing)}); "
                        "migrate into an empty database"
                    )
                # One transaction per table: an interrupted copy leaves nothing behind, and a rerun starts
                # that table again while skipping the finished ones.
                async with pg.transaction():
                    await pg.execute(f'CREATE TABLE IF NOT EXISTS "{table}" ({definition})')
                    await pg.execute(f'TRUNCATE "{table}"')
                    copied = 0
                    for rows in _batches(lite, table, names, batch_rows):
                        records = [
                            tuple(conv(v) for conv, v in zip(converters, row, strict=True)) for row in rows
                        ]
                        await pg.copy_records_to_table(table, records=records, columns=names)
                        copied += len(records)
                        if progress is not None:
                            progress(table, copied, total)
                    for (sql,) in lite.execute(
                        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                        [table],
                    ):
                        match = _INDEX.search(sql)
                        if match:
                            unique, name, on, cols = match.groups()
                            await pg.execute(
                                f'CREATE {"UNIQUE " if unique else ""}INDEX IF NOT EXISTS "{name}" ON "{on}" ({cols})'
                            )
                    await pg.execute(
                        "INSERT INTO contimg_migration (table_name, source_rows) VALUES ($1, $2) "
                        "ON CONFLICT (table_name) DO UPDATE SET source_rows = $2, finished_at = now()",
                        table,
                        total,
                    )
                await pg.execute(f'ANALYZE "{table}"')
                summary.copied[table] = copied
        finally:
            await pg.close()
    finally:
        lite.close()
    return summary
