"""The result cache: list, stats and QA results kept in memory until the database changes.

An entry remembers each open database's ``PRAGMA data_version`` (read on a connection kept for that purpose:
SQLite promises that the value read on one connection changes whenever another connection commits) from
*before* its query ran; a later call whose versions differ recomputes, so a write by the pipeline is never
hidden. Entries also expire after a TTL, and the cache is bounded in bytes, evicting the least recently used.
Callers get copies: changing a returned DataFrame cannot change what the next caller sees.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import pickle
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd

from .records import Record

T = TypeVar("T")
Versions = tuple[int, ...]


@dataclass(frozen=True)
class CacheStats(Record):
    enabled: bool
    hits: int
    misses: int
    entries: int
    bytes: int
    max_bytes: int
    ttl: float

    def title(self) -> str:
        return "Result cache"


@dataclass
class _Entry:
    value: Any
    nbytes: int
    created: float
    versions: Versions


def _size(value: Any) -> int:
    if isinstance(value, pd.DataFrame):
        return int(value.memory_usage(deep=True).sum())
    if isinstance(value, tuple) and all(isinstance(v, pd.DataFrame) for v in value):
        return sum(_size(v) for v in value)
    try:
        return len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # an unpicklable record: count it as large rather than guess small
        return 1 << 20


def _copy(value: Any) -> Any:
    if isinstance(value, pd.DataFrame):
        return value.copy(deep=True)
    if isinstance(value, tuple) and all(isinstance(v, pd.DataFrame) for v in value):
        return tuple(v.copy(deep=True) for v in value)
    return copy.deepcopy(value)


class ResultCache:
    """Bounded in bytes and in time; see the module docstring for when an entry is trusted."""

    def __init__(self, max_bytes: int, ttl: float, versions: Callable[[], Awaitable[Versions]]) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._versions = versions
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @staticmethod
    def key(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in sorted(kwargs.items())]
        return f"{name}({', '.join(shown)})"

    async def get_or_compute(self, key: str, compute: Callable[[], Awaitable[T]]) -> T:
        versions = await self._versions()
        entry = self._entries.get(key)
        if entry is not None and entry.versions == versions and time.monotonic() - entry.created < self.ttl:
            self._entries.move_to_end(key)
            self.hits += 1
            result: T = _copy(entry.value)
            return result
        if entry is not None:
            self._drop(key)
        self.misses += 1
        value = await compute()
        self._store(key, value, versions)
        copied: T = _copy(value)
        return copied

    def _store(self, key: str, value: Any, versions: Versions) -> None:
        nbytes = _size(value)
        if nbytes > self.max_bytes:
            return  # larger than the whole cache: serving it would evict everything else for one entry
        self._drop(key)
        self._entries[key] = _Entry(value, nbytes, time.monotonic(), versions)
        self._bytes += nbytes
        while self._bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.nbytes

    def invalidate(self, pattern: str = "*") -> int:
        """Drop the entries whose key matches a glob such as ``images:*``; returns how many."""
        keys = [k for k in self._entries if fnmatch.fnmatchcase(k, pattern)]
        for k in keys:
            self._drop(k)
        return len(keys)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def stats(self) -> CacheStats:
        return CacheStats(
            enabled=self.enabled,
            hits=self.hits,
            misses=self.misses,
            entries=len(self._entries),
            bytes=self._bytes,
            max_bytes=self.max_bytes,
            ttl=self.ttl,
        )

    def _repr_html_(self) -> str:
        return self.stats()._repr_html_()


def cached(name: str) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T]]]:
    """Serve a domain method from the client's result cache, keyed ``"{name}(args...)"``.

    The domain object must have ``_connections`` with a ``cache`` attribute (None: no caching).
    """

    def decorate(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        @functools.wraps(method)
        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
            cache: ResultCache | None = getattr(self._connections, "cache", None)
            if cache is None or not cache.enabled:
                return await method(self, *args, **kwargs)
            return await cache.get_or_compute(
                ResultCache.key(name, args, kwargs), lambda: method(self, *args, **kwargs)
            )

        return wrapper

    return decorate
