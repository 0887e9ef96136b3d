"""``python -m benchmarks``: every benchmark suite on the cached scaled demo site; exit 1 if a goal is missed."""

from __future__ import annotations

import asyncio
import sys

from . import core, logs, notes, postgres, qa, reliability, science, seed, widgets
from .harness import scaled_site


def main() -> int:
    site = scaled_site()
    ok = asyncio.run(core.run(site))
    ok = asyncio.run(seed.run(seed.seed_site())) and ok
    ok = asyncio.run(logs.run(site)) and ok
    ok = asyncio.run(qa.run(site)) and ok
    ok = asyncio.run(science.run(site)) and ok
    ok = asyncio.run(widgets.run(site)) and ok
    ok = asyncio.run(postgres.run(site)) and ok
    ok = asyncio.run(notes.run(site)) and ok
    ok = asyncio.run(reliability.run(site)) and ok
    print("\nall goals met" if ok else "\nSOME GOALS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
