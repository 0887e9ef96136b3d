"""The pipeline's RQ job queue as stored in Redis, decoded without trusting it (pure functions).

RQ keeps a job in the hash ``rq:job:<id>`` (ISO times, status, description, the call zlib-compressed and
pickled in ``data``), its outcome in the stream ``rq:results:<id>`` (RQ >= 1.12: ``return_value`` pickled
and base64-encoded, ``exc_string`` zlib-compressed and base64-encoded) or, in older RQ, in the hash's
``result`` (pickled) and ``exc_info`` (zlib-compressed text) fields. Queued ids are the list
``rq:queue:<name>``; the other states are sorted sets ``rq:<registry>:<name>``.

**Pickles are never trusted.** Unpickling runs whatever code the pickle names, and anyone who can write to
the Redis server can write a pickle. So the toolkit unpickles with an unpickler that loads no class and
calls no function at all: plain values (numbers, text, bytes, lists, tuples, dicts, sets, None, booleans)
come back as values; anything else is left as it is, with a note naming the class it would have built, and
its raw bytes are kept (``result_pickle``) for a user who trusts their server to ``pickle.loads`` them.
Decompression and decoding are bounded in size.
"""

from __future__ import annotations

import base64
import binascii
import io
import pickle
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

# The states RQ records, and the key that lists the jobs in each (``{q}`` is the queue's name).
STATUS_KEYS: Final[dict[str, str]] = {
    "queued": "rq:queue:{q}",
    "started": "rq:wip:{q}",
    "finished": "rq:finished:{q}",
    "failed": "rq:failed:{q}",
    "deferred": "rq:deferred:{q}",
    "scheduled": "rq:scheduled:{q}",
    "canceled": "rq:canceled:{q}",
}
STATUSES: Final[tuple[str, ...]] = (*STATUS_KEYS, "stopped")
MAX_DECODED = 4 * 1024 * 1024  # bytes of a result or traceback the toolkit decodes; more is cut with a note
RESULT_TYPES: Final[dict[str, str]] = {"1": "successful", "2": "failed", "3": "stopped", "4": "retried"}


class _Refused(Exception):
    def __init__(self, what: str) -> None:
        self.what = what


class _PlainUnpickler(pickle.Unpickler):
    """Loads plain values only: any class or function the pickle names is refused, never imported."""

    def find_class(self, module: str, name: str) -> Any:
        raise _Refused(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("a persistent object")


def plain_unpickle(data: bytes) -> tuple[Any, str | None]:
    """(value, None) for a pickle of plain values; (None, note) for anything else, unexecuted."""
    if len(data) > MAX_DECODED:
        return None, f"a pickle of {len(data):,} bytes: not decoded (more than {MAX_DECODED:,})"
    try:
        return _PlainUnpickler(io.BytesIO(data)).load(), None
    except _Refused as refused:
        return None, f"a pickled {refused.what}: not unpickled (unpickling runs code; see result_pickle)"
    except Exception as exc:  # a truncated or foreign pickle: say so, never raise
        return None, f"not a readable pickle ({type(exc).__name__})"


def _inflate(data: bytes) -> bytes | None:
    """zlib-decompressed bytes, at most MAX_DECODED of them; None when they are not zlib data."""
    try:
        inflater = zlib.decompressobj()
        return inflater.decompress(data, MAX_DECODED)
    except zlib.error:
        return None


def _b64(data: bytes) -> bytes | None:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def traceback_text(raw: bytes | None, *, encoded: bool) -> str | None:
    """A failed job's traceback: base64 then zlib (results stream) or zlib (old hash field) or plain text."""
    if not raw:
        return None
    data = _b64(raw) if encoded else raw
    if data is None:
        data = raw
    text = _inflate(data)
    return (text if text is not None else data[:MAX_DECODED]).decode("utf-8", errors="replace")


def last_line(text: str | None) -> str | None:
    """The exception line of a traceback (its last non-empty line)."""
    if not text:
        return None
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else None


def iso_time(raw: bytes | None) -> datetime | None:
    """RQ's ``2026-12-04T16:48:20.449926Z`` (empty for a time not reached yet)."""
    if not raw:
        return None
    text = raw.decode("ascii", errors="replace").strip().removesuffix("Z")
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def registry_job_id(member: bytes, status: str) -> str:
    """The job id of a registry entry: RQ >= 2 lists running jobs as ``<job id>:<execution id>``."""
    text = member.decode("utf-8", errors="replace")
    if status == "started" and ":" in text:
        return text.rsplit(":", 1)[0]
    return text


def _text(raw: bytes | None) -> str | None:
    return None if not raw else raw.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Call:
    func_name: str | None
    args: str | None  # repr of the arguments, when they are plain values


def call_of(data: bytes | None) -> Call:
    """The function and arguments of a job's ``data`` (zlib pickle of (func, instance, args, kwargs))."""
    if not data:
        return Call(None, None)
    raw = _inflate(data)
    if raw is None:
        return Call(None, None)
    value, note = plain_unpickle(raw)
    if isinstance(value, tuple) and len(value) == 4:
        func, _, args, kwargs = value
        shown = ", ".join([*map(repr, args or ()), *(f"{k}={v!r}" for k, v in (kwargs or {}).items())])
        return Call(func if isinstance(func, str) else None, shown[:1000])
    return Call(None, note)


def job_values(job_id: str, fields: dict[bytes, bytes], result: dict[bytes, bytes] | None) -> dict[str, Any]:
    """A job's record values from its hash and the newest entry of its results stream (None: no stream)."""
    call = call_of(fields.get(b"data"))
    status = _text(fields.get(b"status"))
    value: Any = None
    note: str | None = None
    pickled: bytes | None = None
    traceback: str | None = None
    if result is not None:
        kind = RESULT_TYPES.get(_text(result.get(b"type")) or "", None)
        if result.get(b"return_value"):
            pickled = _b64(result[b"return_value"])
        traceback = traceback_text(result.get(b"exc_string"), encoded=True)
        if kind == "stopped" and status is None:
            status = "stopped"
    elif fields.get(b"result"):
        pickled = fields[b"result"]  # older RQ: the pickle itself
    if traceback is None and fields.get(b"exc_info"):
        traceback = traceback_text(fields[b"exc_info"], encoded=False)
    if pickled is not None:
        value, note = plain_unpickle(pickled)
    timeout = _text(fields.get(b"timeout"))
    return {
        "job_id": job_id,
        "status": status,
        "func_name": call.func_name,
        "args": call.args,
        "description": _text(fields.get(b"description")),
        "origin": _text(fields.get(b"origin")),
        "created_at": iso_time(fields.get(b"created_at")),
        "enqueued_at": iso_time(fields.get(b"enqueued_at")),
        "started_at": iso_time(fields.get(b"started_at")),
        "ended_at": iso_time(fields.get(b"ended_at")),
        "worker_name": _text(fields.get(b"worker_name")),
        "timeout_s": float(timeout) if timeout and timeout.replace(".", "", 1).isdigit() else None,
        "error": last_line(traceback),
        "traceback": traceback,
        "result": value,
        "result_note": note,
        "result_pickle": pickled,
    }
