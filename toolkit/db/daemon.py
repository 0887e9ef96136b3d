"""Blocking file-system calls that might never return (a FIFO, a hung network mount), bounded in time.

They run in a daemon thread of their own, not in an executor: a call stuck in the kernel must keep neither the
client's close, nor ``asyncio.run``'s executor shutdown, nor the interpreter's exit waiting.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


async def in_daemon_thread(fn: Callable[..., T], *args: Any, seconds: float) -> T:
    """``fn(*args)`` in a new daemon thread; ``TimeoutError`` after ``seconds`` (the thread is left
    to finish or hang on its own)."""
    done: Future[T] = Future()

    def run() -> None:
        # Once running, the future cannot be cancelled (a timed-out caller's cancel is then a no-op), so
        # setting the result of a call that outlived its caller never raises in this thread.
        if not done.set_running_or_notify_cancel():
            return
        try:
            result = fn(*args)
        except BaseException as exc:
            done.set_exception(exc)
        else:
            done.set_result(result)

    threading.Thread(target=run, name="contimg-fs-check", daemon=True).start()
    async with asyncio.timeout(seconds):
        return await asyncio.wrap_future(done)
