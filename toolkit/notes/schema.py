"""The notes database's schema, per backend, with its version and migrations (pure text).

``notes_meta`` holds ``schema_version``. A write brings an older database up to ``VERSION`` inside its own
transaction; a database newer than ``VERSION`` is refused (a newer toolkit made it). Events cannot be
updated or deleted: triggers refuse it, so the store stays append-only even for a hand-written statement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ..errors import NotesWriteError

VERSION: Final = 1

SQLITE_MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        "CREATE TABLE notes_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            ordinal INTEGER NOT NULL,
            author TEXT NOT NULL,
            target_kind TEXT NOT NULL,
            target TEXT NOT NULL,
            action TEXT NOT NULL,
            text TEXT,
            tag TEXT,
            grade TEXT,
            label TEXT
        )""",
        "CREATE INDEX events_target ON events (target_kind, target)",
        "CREATE INDEX events_created ON events (created_at)",
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
        "BEGIN SELECT RAISE(ABORT, 'notes events are append-only'); END",
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
        "BEGIN SELECT RAISE(ABORT, 'notes events are append-only'); END",
    ),
}

POSTGRES_MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        "CREATE TABLE notes_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE events (
            seq BIGSERIAL PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            created_at TIMESTAMPTZ NOT NULL,
            ordinal INTEGER NOT NULL,
            author TEXT NOT NULL,
            target_kind TEXT NOT NULL,
            target TEXT NOT NULL,
            action TEXT NOT NULL,
            text TEXT,
            tag TEXT,
            grade TEXT,
            label TEXT
        )""",
        "CREATE INDEX events_target ON events (target_kind, target)",
        "CREATE INDEX events_created ON events (created_at)",
        """CREATE FUNCTION notes_append_only() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'notes events are append-only'; END $$""",
        "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
        "FOR EACH ROW EXECUTE FUNCTION notes_append_only()",
    ),
}

COLUMNS: Final = "event_id, created_at, ordinal, author, target_kind, target, action, text, tag, grade, label"


def pending(version: int, migrations: Mapping[int, tuple[str, ...]]) -> list[str]:
    """The statements that bring a notes database at ``version`` up to ``VERSION``, then record it (with
    ``?`` for the version; PostgreSQL's store spells it ``$1``). A newer database is refused."""
    if version > VERSION:
        raise NotesWriteError(
            f"this notes database has schema version {version}, newer than this toolkit's {VERSION}: "
            "upgrade contimg-toolkit to write to it"
        )
    if version == VERSION:
        return []
    steps = [statement for step in range(version + 1, VERSION + 1) for statement in migrations[step]]
    return [*steps, RECORD_VERSION]


RECORD_VERSION: Final = (
    "INSERT INTO notes_meta (key, value) VALUES ('schema_version', ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
