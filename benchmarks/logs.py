"""Log benchmarks (issue: logs): tail on a 1 GiB log against readlines() and GNU tail; memory; grep throughput."""

from __future__ import annotations

import subprocess
import time
import tracemalloc
from pathlib import Path

from toolkit import AsyncClient
from toolkit.demo import DemoSite

from .harness import CACHE, Result, abest_of, best_of, report

LINE = b"2025-11-30 12:00:00,123 - dsa110_contimg.imaging - INFO - processed chunk 7 of the measurement set\n"
ERROR = b"2025-11-30 12:00:00,123 - dsa110_contimg.imaging - ERROR - tclean failed: no unflagged data\n"


def _make_log(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size >= size:
        return
    block = (LINE * 999 + ERROR) * 64
    with path.open("wb") as handle:
        written = 0
        while written < size:
            handle.write(block)
            written += len(block)


async def _peak_kib(client: AsyncClient, run_id: str) -> float:
    """Peak of Python allocations (all threads) during one tail call, in KiB."""
    tracemalloc.start()
    try:
        await client.logs.tail(run_id, 100)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1024


async def run(site: DemoSite) -> bool:
    folder = CACHE / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    big, medium = folder / "big-1gib.log", folder / "medium-100mib.log"
    _make_log(big, 1 << 30)
    _make_log(medium, 100 << 20)
    results: list[Result] = []
    async with AsyncClient(products_db=site.products_db, log_dirs=[folder]) as client:
        ours = await abest_of(20, lambda: client.logs.tail("big-1gib", 100))

        def readlines_tail() -> list[bytes]:
            with big.open("rb") as handle:
                return handle.readlines()[-100:]

        naive = best_of(2, readlines_tail)
        gnu = best_of(
            10, lambda: subprocess.run(["tail", "-n", "100", str(big)], capture_output=True, check=True)
        )
        results.append(
            Result("logs.tail(run_id, 100) on 1 GiB", ours * 1000, naive * 1000, "readlines()[-100:]",
                   "<= 0.001x (1000x faster)", ours / naive <= 1e-3, unit="ms")
        )  # fmt: skip
        results.append(
            Result("logs.tail(run_id, 100) on 1 GiB", ours * 1000, gnu * 1000, "GNU tail -n 100 (subprocess)",
                   "<= 3x", ours / gnu <= 3, unit="ms")
        )  # fmt: skip
        peak_medium = await _peak_kib(client, "medium-100mib")
        peak_big = await _peak_kib(client, "big-1gib")
        results.append(
            Result("tail peak allocations, 1 GiB vs 100 MiB", peak_big, peak_medium,
                   "same call on 100 MiB (tracemalloc peak, KiB)", "<= 1.1x (does not grow with the file)",
                   peak_big <= peak_medium * 1.1, unit="KiB")
        )  # fmt: skip
        started = time.perf_counter()
        hits = await client.logs.grep("big-1gib", "ERROR", max_matches=None)
        grep_s = time.perf_counter() - started
        gnu_grep = best_of(1, lambda: subprocess.run(["grep", "-c", "ERROR", str(big)], capture_output=True))
        size_mb = big.stat().st_size / 1e6
        results.append(
            Result(f"logs.grep throughput on 1 GiB ({len(hits):,} matches)", size_mb / grep_s, size_mb / gnu_grep,
                   "GNU grep -c (MB/s)", "reported (MB/s, higher is better)", True, unit="MB/s")
        )  # fmt: skip
    return report("Logs (1 GiB generated log)", results, "logs.json")
