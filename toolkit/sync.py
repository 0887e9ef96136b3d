"""The blocking facade: ``Client`` and ``run()`` for scripts and notebook cells that do not ``await``.

Every coroutine runs on a private event loop that lives on one named daemon thread owned by the client
(the way fsspec and jupyter_core serve sync callers); every connection lives on that loop. A blocking call
submits its coroutine there and waits, so it works the same in a plain script, inside a thread whose own
loop is running (a Jupyter cell, an ipywidgets callback) and from several threads at once. Nothing in
asyncio is patched. The facade holds no query logic: each method is the async client's, wrapped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from .client import AsyncClient
from .errors import ClientClosedError
from .settings import Settings

P = ParamSpec("P")
T = TypeVar("T")
WAIT_SLICE = 0.1  # seconds between checks for Ctrl-C while a blocking call waits
# How long an interrupted call may take to clean up (interrupt its query, free its connection).
SETTLE_SECONDS = 30.0


class LoopThread:
    """A private event loop running on its own daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the private loop and wait. Ctrl-C (or any interruption of the wait) cancels it
        there, waits until it has cleaned up, and re-raises."""
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("a blocking call was made from the client's own loop; await the async call")
        if not self.thread.is_alive():
            coro.close()
            raise ClientClosedError("this client is closed; make a new one")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            while True:
                # Short waits: a KeyboardInterrupt that does not wake a blocked lock is still seen at once.
                try:
                    return future.result(timeout=WAIT_SLICE)
                except TimeoutError:
                    if future.done():
                        raise
        except BaseException:
            if not future.done():
                future.cancel()
                concurrent.futures.wait([future], timeout=SETTLE_SECONDS)
            raise

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start ``coro`` on the private loop without waiting (widgets await it from the kernel's loop)."""
        if not self.thread.is_alive():
            coro.close()
            raise ClientClosedError("this client is closed; make a new one")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()
        if not self.loop.is_closed():
            self.loop.close()


def _blocking(loop: LoopThread, method: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """The same call, blocking: same arguments, same return type, same errors."""

    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        return await method(*args, **kwargs)

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return loop.run(call(*args, **kwargs))

    wrapper.__name__ = getattr(method, "__name__", "call")
    wrapper.__doc__ = method.__doc__
    return wrapper


def _blocking_iterator(loop: LoopThread, method: Callable[P, AsyncIterator[T]]) -> Callable[P, Iterator[T]]:
    """An async iterator as an ordinary one; closing it (or leaving a for loop) stops the async side."""

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        source = method(*args, **kwargs)

        async def step() -> T:
            return await anext(source)

        async def close() -> None:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()

        try:
            while True:
                try:
                    yield loop.run(step())
                except StopAsyncIteration:
                    return
        finally:
            if loop.thread.is_alive():
                loop.run(close())

    wrapper.__name__ = getattr(method, "__name__", "iterate")
    wrapper.__doc__ = method.__doc__
    return wrapper


class _Namespace:
    """The blocking twin of one of the async client's areas (``images``, ``ms``, ...)."""

    def __init__(self, loop: LoopThread, domain: object, iterators: tuple[str, ...] = ()) -> None:
        for name in dir(domain):
            if name.startswith("_") or name == "aclose":
                continue
            member = getattr(domain, name)
            if not callable(member):
                continue
            wrapped = _blocking_iterator(loop, member) if name in iterators else _blocking(loop, member)
            setattr(self, name, wrapped)

    def __getattr__(self, name: str) -> Any:  # members are set in __init__; this lets type checkers see them
        raise AttributeError(name)


class Client:
    """Blocking access to a pipeline site, method for method the same as :class:`AsyncClient`.

    ``with Client() as client: client.images.list(since="2025-10-05")``. ``client.logs.follow(...)`` is an
    ordinary iterator. Close it with ``close()`` (or the ``with`` block): that stops its loop thread.
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        self._async = AsyncClient(settings, **overrides)
        self._loop = LoopThread(name=f"contimg-client-{id(self):x}")
        self.settings = self._async.settings
        self.images = _Namespace(self._loop, self._async.images)
        self.qa = _Namespace(self._loop, self._async.qa)
        self.queue = _Namespace(self._loop, self._async.queue)
        self.services = _Namespace(self._loop, self._async.services)
        self.cache = self._async.cache  # plain methods, no I/O: shared as it is
        self.provenance = _blocking(self._loop, self._async.provenance)
        self.ms = _Namespace(self._loop, self._async.ms)
        self.sources = _Namespace(self._loop, self._async.sources)
        self.jobs = _Namespace(self._loop, self._async.jobs)
        self.cal = _Namespace(self._loop, self._async.cal)
        self.logs = _Namespace(self._loop, self._async.logs, iterators=("follow",))
        self.stats = _blocking(self._loop, self._async.stats)
        self.sql = _blocking(self._loop, self._async.sql)
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
        return f"<Client {state} products_db={self.settings.products_db}>"


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
