"""Pure log handling: run-id safety, block-wise reading of file ends, and parsing lines into records.

The pipeline writes lines like ``2025-11-30 12:00:00,123 [INFO] message`` or
``2025-11-30 12:00:00,123 - dsa110_contimg.imaging - INFO - message``; a traceback continues the record
above it. Everything here works on bytes, paths and strings, with no event loop.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from .errors import FileNotAccessibleError, InvalidPathError

BLOCK = 64 * 1024
MAX_LINE = 1024 * 1024  # longer lines are cut, so one runaway line cannot exhaust memory
CUT_MARKER = " …[line cut at 1 MiB]"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_BRACKET = re.compile(r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?) \[(\w+)\] ?(.*)$")
_DASHED = re.compile(r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?) - (\S+) - (\w+) - ?(.*)$")


# --------------------------------------------------------------------------------------------- safety
def check_run_id(run_id: object) -> str:
    """A run id names one file in a log folder: no separators, no ``..``, no NUL, not empty or absolute."""
    if not isinstance(run_id, str) or not run_id.strip():
        raise InvalidPathError(f"a run id must be a non-empty string, got {run_id!r}")
    bad = [c for c in ("/", "\\", "\x00") if c in run_id]
    if bad or run_id in (".", "..") or ".." in run_id or os.path.isabs(run_id):
        raise InvalidPathError(
            f"run id {run_id!r} is not a plain name (no path separators, '..' or NUL bytes); "
            "use the id as `client.jobs.list()` shows it"
        )
    return run_id


def locate(run_id: str, log_dirs: Sequence[Path]) -> Path | None:
    """The first ``{run_id}.log`` across the log dirs, its real path inside one of them; None if absent.

    A log whose resolved path (symlinks followed) lies outside every configured folder is refused, and is
    never opened.
    """
    name = check_run_id(run_id) + ".log"
    roots = [d.resolve() for d in log_dirs]
    for folder in log_dirs:
        candidate = folder / name
        if not os.path.lexists(candidate):
            continue
        real = candidate.resolve()
        if not any(real.is_relative_to(root) for root in roots):
            raise FileNotAccessibleError(
                f"log {candidate} resolves to {real}, outside the configured log folders; it is not read"
            )
        if real.is_file():
            return real
    return None


# -------------------------------------------------------------------------------------------- reading
def _decode(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    if text.endswith("\r"):
        text = text[:-1]
    if len(raw) > MAX_LINE:
        text = text[:MAX_LINE] + CUT_MARKER
    return text


def _split_complete(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines and the trailing fragment (a line still being written has no newline yet)."""
    parts = data.split(b"\n")
    return parts[:-1], parts[-1]


def all_lines(data: bytes) -> list[str]:
    """Every line of a whole log's bytes; a last line without its newline is kept."""
    lines, fragment = _split_complete(data)
    if fragment:
        lines.append(fragment)
    return [_decode(line) for line in lines]


def tail_lines(handle: BinaryIO, n: int, size: int) -> list[str]:
    """The last ``n`` complete lines, reading backwards from ``size`` in blocks: cost grows with n, not the file."""
    if n <= 0 or size == 0:
        return []
    # A final fragment without a newline is a line still being written: leave it out.
    handle.seek(size - 1)
    end = size if handle.read(1) == b"\n" else None
    pos = size
    chunks: list[bytes] = []
    newlines = 0
    carried = 0
    while pos > 0 and newlines <= n:
        step = min(BLOCK, pos)
        pos -= step
        handle.seek(pos)
        block = handle.read(step)
        chunks.append(block)
        newlines += block.count(b"\n")
        carried += step
        if newlines <= 1 and carried > MAX_LINE + BLOCK and n >= 1:
            # One enormous line: keep its tail end only, the head is cut below.
            break
    data = b"".join(reversed(chunks))
    if end is None:
        cut = data.rfind(b"\n")
        data = data[: cut + 1] if cut >= 0 else b""
    lines = data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n")
    if pos > 0 and lines:
        lines = lines[1:]  # the first piece may be the middle of a line
    return [_decode(line) for line in lines[-n:]]


def head_lines(handle: BinaryIO, n: int) -> list[str]:
    """The first ``n`` complete lines, reading forwards in blocks."""
    lines: list[bytes] = []
    fragment = b""
    while len(lines) < n:
        block = handle.read(BLOCK)
        if not block:
            break
        complete, fragment = _split_complete(fragment + block)
        lines.extend(complete)
        if len(fragment) > MAX_LINE:
            lines.append(fragment[:MAX_LINE] + b"\n")
            fragment = b""
            while True:  # skip the rest of the runaway line
                block = handle.read(BLOCK)
                if not block:
                    break
                cut = block.find(b"\n")
                if cut >= 0:
                    complete, fragment = _split_complete(block[cut + 1 :])
                    lines.extend(complete)
                    break
    return [_decode(line.rstrip(b"\n")) for line in lines[:n]]


def text_lines(text: str) -> list[str]:
    """Lines of an inline log (kept in the jobs table)."""
    return [line.removesuffix("\r") for line in text.splitlines()]


# -------------------------------------------------------------------------------------------- parsing
@dataclass
class Record:
    line_number: int
    timestamp: str | None
    level: str | None
    logger: str | None
    message: str
    continuation: list[str] = field(default_factory=list)


def parse_line(line: str) -> tuple[str, str | None, str | None, str] | None:
    """(timestamp, level, logger, message) of a line in one of the pipeline's formats, else None."""
    match = _DASHED.match(line)
    if match:
        stamp, logger, level, message = match.groups()
        return stamp, level.upper(), logger, message
    match = _BRACKET.match(line)
    if match:
        stamp, level, message = match.groups()
        return stamp, level.upper(), None, message
    return None


def parse(lines: Iterable[str], first_line_number: int = 1) -> list[Record]:
    """Records, with continuation lines (tracebacks) folded into the record above them.

    Lines before any record, in no known format, are kept as records with no level.
    """
    records: list[Record] = []
    for number, line in enumerate(lines, start=first_line_number):
        parsed = parse_line(line)
        if parsed is not None:
            stamp, level, logger, message = parsed
            records.append(Record(number, stamp, level, logger, message))
        elif records and records[-1].level is not None:
            records[-1].continuation.append(line)
        else:
            records.append(Record(number, None, None, None, line))
    return records


def records_frame(records: Sequence[Record]) -> pd.DataFrame:
    """Parsed records -> DataFrame: line_number, timestamp (UTC), level, logger, message (with its traceback)."""
    stamps = pd.to_datetime(
        pd.Series([r.timestamp.replace(",", ".") if r.timestamp else None for r in records], dtype="str"),
        utc=True,
        errors="coerce",
        format="ISO8601",
    )
    return pd.DataFrame(
        {
            "line_number": pd.array([r.line_number for r in records], dtype="Int64"),
            "timestamp": stamps.astype("datetime64[us, UTC]"),
            "level": pd.array([r.level for r in records], dtype="str"),
            "logger": pd.array([r.logger for r in records], dtype="str"),
            "message": pd.array(["\n".join([r.message, *r.continuation]) for r in records], dtype="str"),
        }
    )
