"""Answers are never older than a commit that finished before the call began, whatever the pipeline does.

The pipeline is a separate process here (a real writer on the real file), stepping in lockstep with the test:
it commits one image and one photometry row, then checkpoints in one of SQLite's four modes, and only then
does the test read through every path the toolkit has. Two copies of SQLite in the reading process (the bug
this guards against) made pooled connections answer from before the checkpoint.
"""

from __future__ import annotations

import asyncio

from toolkit import AsyncClient
from toolkit.demo import DemoSite

from .pipeline import MODES, SOURCE, pipeline_job


async def test_every_path_sees_each_commit_after_every_checkpoint_mode(writable_site: DemoSite) -> None:
    kwargs = writable_site.settings_kwargs()
    db = writable_site.products_db
    busy_reports = []
    async with AsyncClient(**kwargs, pool_size=2) as watcher:
        # Both pooled connections open before anything else reads the file. (The watcher makes no cached call:
        # the cache's own long-lived connection happened to shield the pool from the bug this test catches.)
        both = await asyncio.gather(
            *(
                watcher.sql(
                    "SELECT (SELECT COUNT(*) FROM images) AS images, (SELECT COUNT(*) FROM photometry) AS phot,"
                    " (SELECT COUNT(*) FROM photometry WHERE source_id = ?) AS points",
                    [SOURCE],
                )
                for _ in range(2)
            )
        )
        images, photometry, points = (int(both[0][c].iloc[0]) for c in ("images", "phot", "points"))

        async def counts(client: AsyncClient) -> list[int]:
            found = await asyncio.gather(*(client.sql("SELECT COUNT(*) AS n FROM images") for _ in range(4)))
            return [int(f["n"].iloc[0]) for f in found]

        for step in range(1, 9):  # every checkpoint mode twice
            mode = MODES[(step - 1) % 4]
            busy_reports.append((mode, await asyncio.to_thread(pipeline_job, db, "images", step, mode)))
            expected = images + step
            # A client that opens the file after the job, bulk reads first, and closes again before the
            # long-lived one reads: a second SQLite copy in the process broke the first copy's view exactly
            # when it opened the file after a checkpoint, or closed it (the watcher therefore makes only the
            # small queries that run on its pooled connections).
            async with AsyncClient(**kwargs) as fresh:
                assert len(await fresh.images.list()) == expected, (mode, step)
                assert await counts(fresh) == [expected] * 4, (mode, step)
            assert await counts(watcher) == [expected] * 4, (mode, step)

            busy_reports.append((mode, await asyncio.to_thread(pipeline_job, db, "photometry", step, mode)))
            async with AsyncClient(**kwargs) as fresh:
                assert len(await fresh.sources.measurements()) == photometry + step, (mode, step)
                assert len(await fresh.images.list(limit=5000)) == expected, (mode, step)
                assert (await fresh.stats()).photometry_rows == photometry + step, (mode, step)
            assert len(await watcher.sources.lightcurve(SOURCE)) == points + step, (mode, step)
            assert await counts(watcher) == [expected] * 4, (mode, step)
    # The toolkit never kept the pipeline's checkpoints from finishing (TRUNCATE included).
    assert busy_reports == [(m, 0) for m in MODES * 2 for _ in range(2)]
