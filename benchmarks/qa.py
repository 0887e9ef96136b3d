"""QA benchmarks (issue: QA): grading 10,000 images in one vectorised call against one qa.image call each."""

from __future__ import annotations

import time

from toolkit import AsyncClient
from toolkit.demo import DemoSite

from .harness import Result, abest_of, report

# qa.image is timed on every SAMPLE_EVERY-th image and scaled to all of them: timing all 10,000 one by one
# would take a minute and say nothing more (each call does the same work).
SAMPLE_EVERY = 10


async def run(site: DemoSite) -> bool:
    results: list[Result] = []
    async with AsyncClient(
        **site.settings_kwargs(), cache_bytes=0
    ) as client:  # measure queries, not the cache
        graded = await client.qa.images()
        n = len(graded)
        ids = [int(i) for i in graded["id"].iloc[::SAMPLE_EVERY]]
        for image_id in ids[:20]:  # warm
            await client.qa.image(image_id)
        bulk = await abest_of(3, lambda: client.qa.images())
        started = time.perf_counter()
        for image_id in ids:
            await client.qa.image(image_id)
        per_image = (time.perf_counter() - started) / len(ids)
        results.append(
            Result(
                f"qa.images() grading {n:,} images",
                bulk,
                per_image * n,
                f"qa.image() per image ({len(ids):,} timed, x{n / len(ids):g})",
                "<= 0.02x (50x faster)",
                bulk / (per_image * n) <= 1 / 50,
            )
        )
    return report("QA (10k images)", results, "qa.json")
