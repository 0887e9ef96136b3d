"""One sqlite3 connection and the one thread that runs its jobs, in order.

The pairing aiosqlite makes, with any function as a job: a small query is fetched and shaped into its frame in
one crossing, in the thread that made its rows. aiosqlite keeps that kind of job private; run through a
``ThreadPoolExecutor`` each crossing cost ~40 us more (the executor's work item, its own future and the
chained asyncio one), and shaping on the event loop after aiosqlite's fetch made a light curve ~0.2 ms slower.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_Job = tuple["asyncio.Future[Any]", Callable[[], Any]]


class ConnectionThread:
    """Its connection is made, used and closed in its thread (``sqlite3``'s same-thread check stays on);
    only ``interrupt`` and ``in_transaction``, which sqlite3 allows from any thread, are used from outside."""

    def __init__(self, name: str) -> None:
        self.conn: sqlite3.Connection | None = None
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        # A daemon: a job stuck in a hung filesystem must not keep the interpreter from exiting.
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn = job
            try:
                result, error = fn(), None
            except BaseException as exc:  # handed to the awaiting caller as it is
                result, error = None, exc
            with contextlib.suppress(RuntimeError):  # the loop is closed: no one awaits this any more
                future.get_loop().call_soon_threadsafe(_settle, future, result, error)
            del job, future, fn, result, error  # nothing of a finished job is kept while waiting for the next

    def run(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """``fn()`` in this thread, after the jobs before it; its outcome as a future of the running loop."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put((future, fn))
        return future

    def interrupt(self) -> None:
        """Stops the statement running now at its next step (a no-op when none runs)."""
        if self.conn is not None:
            self.conn.interrupt()

    async def close(self) -> None:
        """Closes the connection in its thread, then ends the thread."""
        conn = self.conn
        self.conn = None
        try:
            if conn is not None:
                with contextlib.suppress(
                    Exception
                ):  # a connection failing to close must not keep others open
                    await self.run(conn.close)
        finally:
            self._jobs.put(None)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # cancelled by a caller that gave up
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
