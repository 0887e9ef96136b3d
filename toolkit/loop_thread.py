"""The private event loop behind the blocking facade, and the base of the generated blocking areas.

Every coroutine of a blocking client runs on a private event loop that lives on one named daemon thread
owned by the client (the way fsspec and jupyter_core serve sync callers). A blocking call submits its
coroutine there and waits, so it works the same in a plain script, inside a thread whose own loop is running
(a Jupyter cell, an ipywidgets callback) and from several threads at once. Nothing in asyncio is patched.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Generic, TypeVar

from .errors import ClientClosedError

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


class BlockingArea:
    """Base of the generated blocking areas (:mod:`toolkit.blocking`): the async area and the loop it runs on."""

    _area: Any

    def __init__(self, loop: LoopThread, area: Any) -> None:
        self._loop = loop
        self._area = area

    def _run(self, awaitable: Awaitable[T]) -> T:
        async def wait() -> T:
            return await awaitable

        try:
            return self._loop.run(wait())
        finally:
            # Never started (the client was closed): close it, or Python warns it was never awaited.
            if (
                inspect.iscoroutine(awaitable)
                and inspect.getcoroutinestate(awaitable) == inspect.CORO_CREATED
            ):
                awaitable.close()

    def _iterate(self, source: AsyncIterator[T]) -> Iterator[T]:
        """An async iterator as an ordinary one; closing it (or leaving a for loop) stops the async side."""
        loop = self._loop

        async def step() -> T:
            return await anext(source)

        async def close() -> None:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()

        def iterate() -> Iterator[T]:
            try:
                while True:
                    try:
                        yield loop.run(step())
                    except StopAsyncIteration:
                        return
            finally:
                if loop.thread.is_alive():
                    loop.run(close())

        return iterate()

    def _context(self, manager: AbstractAsyncContextManager[T]) -> BlockingContext[T]:
        return BlockingContext(self, manager)


class BlockingContext(Generic[T]):
    """An async context manager (such as ``notes.batch()``) used with ``with``: entering and leaving run
    on the client's loop."""

    def __init__(self, area: BlockingArea, manager: AbstractAsyncContextManager[T]) -> None:
        self._area = area
        self._manager = manager

    def __enter__(self) -> T:
        return self._area._run(self._manager.__aenter__())

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._area._run(self._manager.__aexit__(exc_type, exc, tb))
