"""The blocking facade: ``Client`` and ``run()`` for scripts and notebook cells that do not ``await``.

Every coroutine runs on a private event loop that lives on one named daemon thread owned by the client
(the way fsspec and jupyter_core serve sync callers); every connection lives on that loop. A blocking call
submits its coroutine there and waits, so it works the same in a plain script, inside a thread whose own
loop is running (a Jupyter cell, an ipywidgets callback) and from several threads at once. Nothing in
asyncio is patched. The facade holds no query logic: each method is the async client's, wrapped.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from .blocking import BlockingAreas, BlockingClientCalls
from .client import AsyncClient
from .loop_thread import LoopThread
from .settings import Settings

T = TypeVar("T")


class Client(BlockingClientCalls, BlockingAreas):
    """Blocking access to a pipeline site, method for method the same as :class:`AsyncClient`.

    ``with Client() as client: client.images.list(since="2025-10-05")``. ``client.logs.follow(...)`` is an
    ordinary iterator. Close it with ``close()`` (or the ``with`` block): that stops its loop thread.
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        self._async = AsyncClient(settings, **overrides)
        super().__init__(LoopThread(name=f"contimg-client-{id(self):x}"), self._async)
        self.settings = self._async.settings
        self._attach_areas(self._loop, self._async)
        self.cache = self._async.cache  # plain methods, no I/O: shared as it is
        self._close_lock = threading.Lock()

    @property
    def loop_thread(self) -> LoopThread:
        """The private loop every call of this client runs on."""
        return self._loop

    @property
    def async_client(self) -> AsyncClient:
        """The async client underneath (bound to this client's private loop)."""
        return self._async

    @property
    def closed(self) -> bool:
        return self._async.closed

    def open(self) -> Client:
        """Open the databases now, so configuration errors surface here rather than on first use."""
        self._loop.run(self._async.open())
        return self

    def close(self) -> None:
        """Close connections and worker threads, then stop the private loop thread."""
        with self._close_lock:
            if self._loop.thread.is_alive():
                self._loop.run(self._async.aclose())
            self._loop.stop()

    def __enter__(self) -> Client:
        try:
            return self.open()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<Client {state} {self.settings.sources_line()}>"


_shared: LoopThread | None = None
_shared_lock = threading.Lock()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from blocking code, even where an event loop is already running.

    With no loop running in this thread it is ``asyncio.run``; inside a running loop (a notebook cell, a
    widget callback), where ``asyncio.run`` refuses, the coroutine runs on a shared private loop thread.
    The coroutine must not use objects bound to the caller's loop (make the client inside it).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.thread.is_alive():
            _shared = LoopThread(name="contimg-run")
    return _shared.run(coro)
