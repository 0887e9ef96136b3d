"""What ``sql()`` may run: one statement that reads (pure functions, no database needed).

The databases enforce read-only on their own (SQLite ``mode=ro`` plus an authorizer, PostgreSQL read-only
transactions); this check comes first so that a user gets a clear answer before anything reaches a driver,
and so that a statement that would *hold* state (``BEGIN`` keeps a snapshot open, so the pooled connection
would answer from the past for the rest of the client's life) never runs.
"""

from __future__ import annotations

import re

from ..errors import ReadOnlyError, ValidationError

# A generous bound on the text of one statement: SQL longer than this is generated, not typed.
MAX_SQL_CHARS = 1_000_000

_READS = {
    "sqlite": ("SELECT", "WITH", "VALUES", "EXPLAIN", "PRAGMA"),
    "postgresql": ("SELECT", "WITH", "VALUES", "EXPLAIN", "TABLE", "SHOW"),
}
_TRANSACTION = {"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "START", "ABORT"}
_WRITES = {
    "INSERT", "UPDATE", "DELETE", "REPLACE", "UPSERT", "CREATE", "DROP", "ALTER", "ATTACH", "DETACH",
    "VACUUM", "REINDEX", "ANALYZE", "TRUNCATE", "GRANT", "REVOKE", "COPY", "SET", "RESET", "LOCK",
    "CALL", "DO", "LISTEN", "NOTIFY", "DISCARD", "CLUSTER", "REFRESH", "COMMENT", "SECURITY", "LOAD",
    "IMPORT", "MERGE", "PREPARE", "EXECUTE", "DEALLOCATE", "DECLARE", "FETCH", "MOVE", "CLOSE", "CHECKPOINT",
}  # fmt: skip
_COMMENT_OR_SPACE = re.compile(r"(\s+|--[^\n]*(\n|$)|/\*.*?\*/|\()+", re.DOTALL)
_WORD = re.compile(r"[A-Za-z_]+")

# PRAGMAs that only report: with no argument, or with a table/index name as argument. Every other pragma,
# and any assignment, is refused (``PRAGMA wal_checkpoint`` or ``optimize`` with no argument still act).
READ_PRAGMAS = frozenset(
    {
        "application_id", "auto_vacuum", "busy_timeout", "cache_size", "collation_list", "compile_options",
        "data_version", "database_list", "encoding", "foreign_key_check", "foreign_key_list", "foreign_keys",
        "freelist_count", "function_list", "index_info", "index_list", "index_xinfo", "integrity_check",
        "journal_mode", "module_list", "page_count", "page_size", "pragma_list", "quick_check",
        "schema_version", "table_info", "table_list", "table_xinfo", "user_version",
    }
)  # fmt: skip


# Those that take a table or index name (or a row count) as their argument and still only report.
READ_PRAGMAS_WITH_ARGUMENT = frozenset(
    {
        "foreign_key_check", "foreign_key_list", "index_info", "index_list", "index_xinfo",
        "integrity_check", "quick_check", "table_info", "table_list", "table_xinfo",
    }
)  # fmt: skip


# PostgreSQL functions whose effect outlives the statement's transaction (session settings, session-level
# advisory locks that could block the pipeline). The rolled-back READ ONLY transaction undoes set_config
# already; refusing them says so plainly instead of seeming to work.
_SESSION_FUNCTIONS = re.compile(
    r"\b(set_config|pg_advisory_lock|pg_advisory_lock_shared|pg_try_advisory_lock|pg_try_advisory_lock_shared)"
    r"\s*\("
)
_LITERALS = re.compile(r"'(?:[^']|'')*'|\$([A-Za-z_]*)\$.*?\$\1\$", re.DOTALL)


def leading_keyword(sql: str) -> str:
    """The statement's first keyword, upper case, after comments, white space and opening brackets."""
    start = _COMMENT_OR_SPACE.match(sql)
    word = _WORD.match(sql, start.end() if start else 0)
    return word.group(0).upper() if word else ""


def check_read_statement(sql: object, dialect: str) -> str:
    """``sql`` unless it is not text, too long, or starts with a keyword that writes or controls transactions."""
    if not isinstance(sql, str) or not sql.strip():
        raise ValidationError(f"query must be a non-empty string of SQL, got {sql!r}")
    if len(sql) > MAX_SQL_CHARS:
        raise ValidationError(f"query is {len(sql):,} characters; at most {MAX_SQL_CHARS:,} are accepted")
    if "\x00" in sql:
        raise ValidationError("query contains a NUL character")
    if dialect == "postgresql":
        code = _LITERALS.sub("''", sql).replace('"', "").lower()
        found = _SESSION_FUNCTIONS.search(code)
        if found:
            raise ReadOnlyError(
                f"sql() does not run {found.group(1)}(): its effect would outlive the statement (session "
                "settings, session locks). Each statement runs in its own read-only transaction."
            )
    allowed = _READS[dialect]
    keyword = leading_keyword(sql)
    if keyword in allowed:
        return sql
    listed = ", ".join(allowed)
    if keyword in _TRANSACTION:
        raise ReadOnlyError(
            f"sql() does not run transaction control ({keyword}): each call is its own read, and an open "
            f"transaction would keep answering from an old snapshot while the pipeline writes. Run one of "
            f"{listed}."
        )
    if keyword in _WRITES:
        raise ReadOnlyError(
            f"sql() only reads: {keyword} is refused, and the pipeline's databases are opened read-only. "
            f"Run one of {listed}."
        )
    # Anything else (a typo such as SELEKT) goes to the database, which names the syntax error precisely;
    # its read-only guards refuse whatever might still write.
    return sql
