"""Handing freed memory back to the system between the chunks of a bounded-memory read (no I/O)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

import pyarrow as pa


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``; None where the C library has none (macOS, musl)."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_unused() -> None:
    """Gives back what the allocators keep of freed memory: Arrow's pool and every glibc arena.

    A chunk's frame is freed in the worker thread that built it, into that thread's glibc arena, and the
    pool's threads take turns, so the next chunk is built in another arena while the first keeps its pages:
    the 10M-row variability peaked at 266-339 MiB run to run against 259 MiB at 1M (two chunks). The same
    practice as Dask's workers (``malloc_trim``, since glibc 2.8 over all arenas); it costs a few
    milliseconds a chunk, against a second to read and compute one."""
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
