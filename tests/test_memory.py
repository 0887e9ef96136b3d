"""Freed memory goes back to the system between chunks (toolkit.memory), measured on this process."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from toolkit import memory


def resident_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(memory._malloc_trim() is None, reason="the C library has no malloc_trim")
def test_memory_a_worker_thread_freed_goes_back_to_the_system() -> None:
    """64 KiB arrays (below glibc's mmap threshold, so in the thread's arena), all but the last freed: the
    last one pins the arena's top, so free() itself gives nothing back; release_unused does."""
    kept: list[np.ndarray] = []

    def fill() -> None:
        arrays = [np.ones(8192) for _ in range(1024)]  # 64 MiB, touched
        kept.append(arrays[-1])
        del arrays

    worker = threading.Thread(target=fill)
    worker.start()
    worker.join()
    before = resident_mib()
    memory.release_unused()
    after = resident_mib()
    assert before - after > 32, (before, after)
    assert kept[0].sum() == 8192  # what is still held is untouched
