"""Thread accounting for tests: no worker thread may outlive its client."""

from __future__ import annotations

import asyncio
import threading
import time


def live_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()}


async def until_no_new_threads(before: set[threading.Thread], seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while live_threads() - before and time.monotonic() < deadline:  # noqa: ASYNC110 - polling threads
        await asyncio.sleep(0.05)
    left = live_threads() - before
    assert not left, f"worker threads outlived their client: {sorted(t.name for t in left)}"
