"""Job logs: find, tail, head, follow, grep, parse and summarise ``{run_id}.log`` files (or inline logs).

Files are read in large blocks in this domain's own worker threads: one crossing per call (or per poll in
``follow``), never per line. The path-safety check lives in :func:`toolkit.logparse.locate` only.
"""

from __future__ import annotations

import asyncio
import os
import time
import warnings
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import pandas as pd
import regex as _regex

from .. import logparse
from ..arguments import check_count, is_finite_number
from ..db.connections import Connections
from ..errors import FileNotAccessibleError, QueryTimeoutError, RecordNotFoundError, ValidationError
from ..records import Record
from .jobs import get_select

T = TypeVar("T")
GREP_BLOCK = 8 * 1024 * 1024
FOLLOW_READ = 1024 * 1024
# Bounds on what one call may ask for (lines of context, lines from an end, matches, pattern length).
MAX_CONTEXT = 10_000
MAX_LINES = 1_000_000
MAX_MATCHES = 100_000
MAX_PATTERN = 10_000
# Lines are counted (one pass over the bytes) for logs up to this size; a bigger log says why it has no count.
COUNT_LIMIT = 64 * 1024 * 1024
READ_DEFAULT = 16 * 1024 * 1024
READ_LIMIT = 1024 * 1024 * 1024


class GrepTruncatedWarning(UserWarning):
    """grep stopped at MAX_MATCHES matches because no max_matches was given."""


class _Deadline:
    """The time a search may still take. ``regex`` stops a match attempt when it runs out (the standard
    ``re`` cannot be stopped: one catastrophic pattern would hold the thread, and the GIL, for minutes)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        remaining = self._end - time.monotonic()
        if remaining <= 0:
            raise self.expired()
        return remaining

    def expired(self) -> QueryTimeoutError:
        return QueryTimeoutError(
            f"the log search ran past the {self.seconds:g} s query timeout: narrow the pattern "
            "(avoid nested repeats such as (a|aa)+) or raise query_timeout"
        )


@dataclass(frozen=True)
class LogLines(Record):
    """Lines from a log, and how big the whole log is: ``size`` in bytes and ``total_lines`` (counted for
    logs up to 64 MiB; above that it is None and ``total_lines_note`` says why)."""

    run_id: str
    source: str  # the file's path, or "inline" for a log kept in the jobs table
    lines: list[str]
    size: int
    total_lines: int | None = None
    total_lines_note: str | None = None

    def title(self) -> str:
        total = f"{self.total_lines:,}" if self.total_lines is not None else "?"
        return f"log {self.run_id} ({len(self.lines):,} of {total} lines, {self.size:,} bytes)"


def _count_lines(handle: BinaryIO, size: int) -> tuple[int | None, str | None]:
    """Lines in the file (a last line without its newline counts), read in blocks; None above COUNT_LIMIT."""
    if size > COUNT_LIMIT:
        return None, f"not counted: the log is {size:,} bytes, and lines are counted up to {COUNT_LIMIT:,}"
    handle.seek(0)
    count, last = 0, b"\n"
    while block := handle.read(GREP_BLOCK):
        count += block.count(b"\n")
        last = block[-1:]
    return count + (last != b"\n"), None


@dataclass(frozen=True)
class LogSummary(Record):
    run_id: str
    source: str
    counts: dict[str, int]
    first_timestamp: datetime | None
    last_timestamp: datetime | None
    first_error: str | None
    first_error_line: int | None

    def title(self) -> str:
        return f"log summary {self.run_id}"


# ------------------------------------------------------------------------------------- worker functions
def _read_end(path: Path, n: int, from_end: bool) -> tuple[list[str], int, int | None, str | None]:
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            lines = logparse.tail_lines(handle, n, size) if from_end else logparse.head_lines(handle, n)
            total, note = _count_lines(handle, size)
    except FileNotFoundError as exc:
        raise FileNotAccessibleError(f"log {path} vanished while it was being read") from exc
    return lines, size, total, note


def _too_big(run_id: str, size: int, max_bytes: int) -> ValidationError:
    return ValidationError(
        f"log {run_id} is {size:,} bytes, above max_bytes={max_bytes:,}: read its end with logs.tail, search it "
        "with logs.grep or parse it with logs.frame (or raise max_bytes)"
    )


def _read_whole(path: Path, run_id: str, max_bytes: int) -> tuple[list[str], int]:
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)  # a log growing past the limit while read is still refused
    except FileNotFoundError as exc:
        raise FileNotAccessibleError(f"log {path} vanished while it was being read") from exc
    if len(data) > max_bytes:
        raise _too_big(run_id, max(len(data), path.stat().st_size), max_bytes)
    return logparse.all_lines(data), len(data)


def _read_all(path: Path) -> list[str]:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError as exc:
        raise FileNotAccessibleError(f"log {path} vanished while it was being read") from exc
    return logparse.all_lines(data)


def _parsed(found: Path | str) -> pd.DataFrame:
    lines = _read_all(found) if isinstance(found, Path) else logparse.text_lines(found)
    return logparse.records_frame(logparse.parse(lines))


def _grep_lines(
    text: str, pattern: _regex.Pattern[str], context: int, max_matches: int, deadline: _Deadline
) -> list[tuple[int, str, bool]]:
    lines = logparse.text_lines(text)
    hits = []
    try:
        for i, line in enumerate(lines):
            if pattern.search(line, concurrent=True, timeout=deadline.left()):
                hits.append(i)
                if len(hits) >= max_matches:
                    break
    except TimeoutError as exc:  # regex's own: the match attempt used up the time left
        raise deadline.expired() from exc
    return _with_context(hits, lines.__getitem__, len(lines), context)


def _too_many_lines() -> ValidationError:
    return ValidationError(
        f"grep would return more than {MAX_LINES:,} lines: lower context or max_matches, or narrow the pattern"
    )


def _grep_frame(rows: list[tuple[int, str, bool]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "line_number": pd.array([r[0] for r in rows], dtype="Int64"),
            "line": pd.array([r[1] for r in rows], dtype="str"),
            "match": pd.array([r[2] for r in rows], dtype="boolean"),
        }
    )


def _with_context(
    hits: list[int], line_at: Callable[[int], str], total: int, context: int
) -> list[tuple[int, str, bool]]:
    matched = set(hits)
    wanted: set[int] = set()
    for i in hits:
        wanted.update(range(max(0, i - context), min(total, i + context + 1)))
        if len(wanted) > MAX_LINES:
            raise _too_many_lines()
    return [(i + 1, line_at(i), i in matched) for i in sorted(wanted)]


def _grep_file(
    path: Path, pattern: _regex.Pattern[bytes], context: int, max_matches: int, deadline: _Deadline
) -> list[tuple[int, str, bool]]:
    """Search a file in 8 MiB blocks; only lines near a match are ever decoded. Bounded by ``deadline``."""
    try:
        return _grep_blocks(path, pattern, context, max_matches, deadline)
    except TimeoutError as exc:  # regex's own: the match attempt used up the time left
        raise deadline.expired() from exc


def _grep_blocks(
    path: Path, pattern: _regex.Pattern[bytes], context: int, max_matches: int, deadline: _Deadline
) -> list[tuple[int, str, bool]]:
    rows: dict[int, tuple[bytes, bool]] = {}  # 0-based line index -> (raw line, is a match)

    def emit(index: int, raw: bytes, is_match: bool) -> None:
        known = rows.get(index)
        rows[index] = (raw, is_match or (known is not None and known[1]))
        if len(rows) > MAX_LINES:
            raise _too_many_lines()

    before: list[tuple[int, bytes]] = []  # the last `context` lines of the previous block
    pending_after = 0
    line_base = 0  # lines completed before this block
    fragment = b""
    found = 0
    with open(path, "rb") as handle:
        while True:
            block = handle.read(GREP_BLOCK)
            data = fragment + block
            if not block:
                if not data:
                    break
                data += b"\n"  # the last line, without its newline
            cut = data.rfind(b"\n") + 1
            chunk, fragment = data[:cut], data[cut:]
            if not chunk:
                continue
            lines = chunk.split(b"\n")[:-1] if (pending_after or context) else None
            if pending_after and lines is not None:
                for k in range(min(pending_after, len(lines))):
                    emit(line_base + k, lines[k], False)
                pending_after = max(0, pending_after - len(lines))
            counted, count_pos, last_line = 0, 0, -1
            for match in pattern.finditer(chunk, concurrent=True, timeout=deadline.left()):
                start = chunk.rfind(b"\n", 0, match.start()) + 1
                counted += chunk.count(b"\n", count_pos, start)
                count_pos = start
                index = counted  # line index within the chunk
                if index == last_line:
                    continue
                last_line = index
                if lines is None:
                    lines = chunk.split(b"\n")[:-1]
                for k in range(index - context, index + context + 1):
                    if 0 <= k < len(lines):
                        emit(line_base + k, lines[k], k == index)
                for number, raw in before[max(0, len(before) + index - context) :]:
                    emit(number, raw, False)
                pending_after = max(pending_after, index + context + 1 - len(lines))
                found += 1
                if found >= max_matches:
                    return _decoded(rows)
            if context and lines is not None:
                before = [
                    (line_base + len(lines) - len(lines[-context:]) + k, raw)
                    for k, raw in enumerate(lines[-context:])
                ]
            line_base += chunk.count(b"\n")
            if not block:
                break
    return _decoded(rows)


def _decoded(rows: dict[int, tuple[bytes, bool]]) -> list[tuple[int, str, bool]]:
    return [(index + 1, logparse._decode(raw), is_match) for index, (raw, is_match) in sorted(rows.items())]


def _poll(path: Path, position: int | None, inode: int | None) -> tuple[bytes, int, int]:
    """New bytes since ``position``; starts over when the file was replaced (rotated) or truncated."""
    try:
        with open(path, "rb") as handle:
            stat = os.fstat(handle.fileno())
            if position is None or inode != stat.st_ino or stat.st_size < position:
                position = 0 if position is not None else stat.st_size
            handle.seek(position)
            data = handle.read(FOLLOW_READ)
    except FileNotFoundError:
        return b"", position or 0, inode or -1
    return data, position + len(data), stat.st_ino


# ----------------------------------------------------------------------------------------------- domain
class Logs:
    def __init__(self, connections: Connections) -> None:
        self._connections = connections
        self._executor: ThreadPoolExecutor | None = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._connections.closed:
            await self._connections.products()  # raises ClientClosedError
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="contimg-logs")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def aclose(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    async def _locate(self, run_id: str) -> Path | None:
        return await self._run(logparse.locate, run_id, self._connections.settings.log_dirs)

    async def find(self, run_id: str) -> Path | str:
        """The log's path (first match across the log dirs), else the job's inline log text."""
        path = await self._locate(logparse.check_run_id(run_id))
        if path is not None:
            return path
        inline = await self._inline(run_id)
        if inline is None:
            dirs = ", ".join(str(d) for d in self._connections.settings.log_dirs) or "no log dirs configured"
            raise RecordNotFoundError("log", run_id, f"no {run_id}.log in {dirs}, and no inline log")
        return inline

    async def _inline(self, run_id: str) -> str | None:
        db = await self._connections.products()
        if not db.catalog.has_table("jobs") or "logs" not in db.catalog.columns("jobs"):
            return None
        try:
            sql, params = get_select(db.catalog, run_id).build()
        except RecordNotFoundError:
            return None
        rows = await db.fetch_rows(f"SELECT j.logs FROM ({sql}) AS j", params)
        return str(rows[0][0]) if rows and rows[0][0] is not None else None

    async def _ends(self, run_id: str, n: int, from_end: bool) -> LogLines:
        check_count(n, "n", high=MAX_LINES)
        found = await self.find(run_id)
        if isinstance(found, Path):
            lines, size, total, note = await self._run(_read_end, found, n, from_end)
            return LogLines(run_id, str(found), lines, size, total, note)
        all_lines = logparse.text_lines(found)
        picked = all_lines[-n:] if from_end and n else all_lines[:n]
        return LogLines(run_id, "inline", picked, len(found.encode()), len(all_lines))

    async def read(self, run_id: str, *, max_bytes: int = READ_DEFAULT) -> LogLines:
        """The whole log, every line. A log above ``max_bytes`` (16 MiB unless given; at most 1 GiB) raises
        ``ValidationError``: read its end with :meth:`tail`, search it with :meth:`grep` or parse it with
        :meth:`frame`, which do not hold the raw text."""
        check_count(max_bytes, "max_bytes", low=1, high=READ_LIMIT)
        found = await self.find(run_id)
        if isinstance(found, Path):
            lines, size = await self._run(_read_whole, found, run_id, max_bytes)
            return LogLines(run_id, str(found), lines, size, len(lines))
        size = len(found.encode())
        if size > max_bytes:
            raise _too_big(run_id, size, max_bytes)
        lines = logparse.text_lines(found)
        return LogLines(run_id, "inline", lines, size, len(lines))

    async def tail(self, run_id: str, n: int = 100) -> LogLines:
        """The last ``n`` complete lines; reads backwards from the end, so the cost does not grow with the file."""
        return await self._ends(run_id, n, True)

    async def head(self, run_id: str, n: int = 100) -> LogLines:
        """The first ``n`` lines."""
        return await self._ends(run_id, n, False)

    async def _records(self, run_id: str) -> tuple[str, pd.DataFrame]:
        """The log's source and its parsed records: reading and parsing in one crossing."""
        found = await self.find(run_id)
        source = str(found) if isinstance(found, Path) else "inline"
        return source, await self._run(_parsed, found)

    async def grep(
        self,
        run_id: str,
        pattern: str,
        *,
        context: int = 0,
        ignore_case: bool = False,
        max_matches: int | None = None,
        regex: bool = True,
    ) -> pd.DataFrame:
        """Lines matching ``pattern`` (a regex, or plain text with ``regex=False``) with ``context`` lines
        around them: columns line_number, line, match.

        Bounded: ``context`` at most 10,000 lines; at most 1,000,000 lines returned; at most ``max_matches`` matches (without it, 100,000, with a
        ``GrepTruncatedWarning`` when that many are found); the search stops with ``QueryTimeoutError`` at the
        query timeout (patterns use the ``regex`` module, whose searches can be stopped)."""
        if not isinstance(pattern, str) or not pattern or "\x00" in pattern:
            raise ValidationError("pattern must be a non-empty string without NUL characters")
        if len(pattern) > MAX_PATTERN:
            raise ValidationError(
                f"pattern is {len(pattern):,} characters; at most {MAX_PATTERN:,} are accepted"
            )
        check_count(context, "context", high=MAX_CONTEXT)
        limit = (
            MAX_MATCHES
            if max_matches is None
            else check_count(max_matches, "max_matches", low=1, high=MAX_LINES)
        )
        text = pattern if regex else _regex.escape(pattern)
        flags = _regex.IGNORECASE if ignore_case else 0
        try:
            compiled = _regex.compile(text, flags)
            compiled_bytes = _regex.compile(text.encode(), flags | _regex.MULTILINE)
        except (_regex.error, ValueError, OverflowError, RecursionError) as exc:
            raise ValidationError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from exc
        found = await self.find(run_id)
        deadline = _Deadline(self._connections.settings.query_timeout)
        if isinstance(found, Path):
            rows = await self._run(_grep_file, found, compiled_bytes, context, limit, deadline)
        else:
            rows = await self._run(_grep_lines, found, compiled, context, limit, deadline)
        if max_matches is None and sum(r[2] for r in rows) >= MAX_MATCHES:
            warnings.warn(
                f"grep stopped at {MAX_MATCHES:,} matches; pass max_matches=... to choose, or narrow the pattern",
                GrepTruncatedWarning,
                stacklevel=2,
            )
        # Up to a million lines: built in the worker, not on the loop.
        return await self._run(_grep_frame, rows)

    async def frame(self, run_id: str) -> pd.DataFrame:
        """Parsed records: line_number, timestamp (UTC), level, logger, message; tracebacks folded into the
        record above them; lines in no known format kept with level NA."""
        _, frame = await self._records(run_id)
        return frame

    async def summary(self, run_id: str) -> LogSummary:
        """Counts per level, first and last timestamp, and the first error with its traceback."""
        source, frame = await self._records(run_id)
        counts = {str(k): int(v) for k, v in frame["level"].value_counts().items()}
        errors = frame[frame["level"].isin(["ERROR", "CRITICAL"])]
        stamps = frame["timestamp"].dropna()
        return LogSummary(
            run_id=run_id,
            source=source,
            counts=counts,
            first_timestamp=stamps.iloc[0].to_pydatetime() if len(stamps) else None,
            last_timestamp=stamps.iloc[-1].to_pydatetime() if len(stamps) else None,
            first_error=str(errors["message"].iloc[0]) if len(errors) else None,
            first_error_line=int(errors["line_number"].iloc[0]) if len(errors) else None,
        )

    async def follow(
        self, run_id: str, *, from_end: bool = True, poll_interval: float = 0.25
    ) -> AsyncIterator[str]:
        """New lines as the pipeline appends them (``tail -F``): survives rotation and truncation, waits for
        a log that does not exist yet, never yields half a line. Stop it by cancelling or ``aclose()``."""
        logparse.check_run_id(run_id)
        if not is_finite_number(poll_interval) or not 0 < poll_interval <= 3600:
            raise ValidationError(
                f"poll_interval must be a number of seconds in (0, 3600], got {poll_interval!r}"
            )
        position: int | None = None if from_end else 0
        inode: int | None = None
        fragment = b""
        while True:
            path = await self._locate(run_id)
            if path is None:
                position = 0  # a log that appears later is followed from its first line
                await asyncio.sleep(poll_interval)
                continue
            previous = inode
            data, position, inode = await self._run(_poll, path, position, inode)
            if previous is not None and inode != previous:
                fragment = b""  # a new file: the old one's unfinished line is gone
            if data:
                lines, fragment = logparse._split_complete(fragment + data)
                for line in lines:
                    yield logparse._decode(line)
                if len(data) == FOLLOW_READ:
                    continue  # more is waiting
            await asyncio.sleep(poll_interval)
