"""Bounded file-system calls: a call that outlives its caller's timeout finishes quietly in its thread."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from toolkit.db.daemon import in_daemon_thread


async def test_a_call_that_outlives_its_timeout_finishes_without_an_error_in_its_thread() -> None:
    errors: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)  # type: ignore[assignment,return-value]
    try:
        for outcome in ("value", "error"):

            def slow(kind: str = outcome) -> str:
                time.sleep(0.2)
                if kind == "error":
                    raise OSError("stale NFS handle")
                return "done"

            with pytest.raises(TimeoutError):
                await in_daemon_thread(slow, seconds=0.02)
        await asyncio.sleep(0.5)  # both threads have finished by now
    finally:
        threading.excepthook = previous
    assert errors == []
    assert await in_daemon_thread(lambda: 42, seconds=1) == 42
