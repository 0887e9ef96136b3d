"""Running the client's coroutines for widget callbacks without ever blocking the kernel.

A callback asks for data with :meth:`Runner.start`: the coroutine runs where the client's connections live
(the kernel's own loop for an ``AsyncClient``, the private loop thread for a blocking ``Client``), and its
result or error comes back to the kernel's loop, where the panel updates its widgets. Every task is tracked,
so ``close()`` cancels what is still running (a live log follow, an auto-refresh) and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ..client import AsyncClient
from ..errors import ConfigurationError, ToolkitError
from ..sync import Client

T = TypeVar("T")
AnyClient = Client | AsyncClient


def async_client(client: AnyClient) -> AsyncClient:
    return client.async_client if isinstance(client, Client) else client


def _kernel_loop() -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise ConfigurationError(
            "the panels run inside a Jupyter kernel (or another running asyncio event loop); "
            "in a plain script use the client's own calls"
        ) from None


class Runner:
    def __init__(self, client: AnyClient) -> None:
        self.client = client
        self.api = async_client(client)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = False

    def _on_client_loop(self, coro: Coroutine[Any, Any, T]) -> Awaitable[T]:
        if isinstance(self.client, Client):
            return asyncio.wrap_future(self.client.loop_thread.submit(coro))
        return coro

    def start(
        self,
        work: Callable[[AsyncClient], Coroutine[Any, Any, T]],
        done: Callable[[T], None],
        failed: Callable[[str], None],
    ) -> asyncio.Task[None] | None:
        """Run ``work(api)``; then ``done(result)`` or ``failed(message)`` on the kernel's loop."""
        if self.closed:
            return None

        async def run() -> None:
            try:
                result = await self._on_client_loop(work(self.api))
            except asyncio.CancelledError:
                raise
            except ToolkitError as exc:
                failed(f"{type(exc).__name__}: {exc}")
                return
            except Exception as exc:  # shown in the panel, never as a traceback in the log console
                failed(f"unexpected {type(exc).__name__}: {exc}")
                return
            done(result)

        task = _kernel_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def stream(self, work: Callable[[AsyncClient], Coroutine[Any, Any, None]]) -> asyncio.Task[None] | None:
        """A long-running coroutine (a follow, a refresh loop); cancelled by :meth:`cancel` or ``close()``."""
        if self.closed:
            return None
        task = _kernel_loop().create_task(self._stream(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def every(self, seconds: float, callback: Callable[[], None]) -> asyncio.Task[None] | None:
        """Call ``callback`` on the kernel's loop every ``seconds`` (a refresh timer) until cancelled by
        :meth:`cancel` or ``close()``."""
        if self.closed:
            return None

        async def tick() -> None:
            while True:
                await asyncio.sleep(seconds)
                callback()

        task = _kernel_loop().create_task(tick())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _stream(self, work: Callable[[AsyncClient], Coroutine[Any, Any, None]]) -> None:
        if isinstance(self.client, Client):
            future = self.client.loop_thread.submit(work(self.api))
            try:
                await asyncio.wrap_future(future)
            finally:
                future.cancel()  # stops the coroutine on the client's loop too
        else:
            await work(self.api)

    @property
    def running(self) -> int:
        return sum(not t.done() for t in self._tasks)

    async def settled(self, ignoring: asyncio.Task[Any] | None = None) -> None:
        """Wait until every started task has finished (tests use it; streams must be cancelled first), but
        ``ignoring`` (a timer that never ends)."""
        while pending := [t for t in self._tasks if not t.done() and t is not ignoring]:
            await asyncio.gather(*pending, return_exceptions=True)

    def cancel(self, task: asyncio.Task[Any] | None) -> None:
        if task is not None and not task.done():
            task.cancel()

    def close(self) -> None:
        self.closed = True
        for task in list(self._tasks):
            task.cancel()
