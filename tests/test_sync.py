"""The blocking facade: plain scripts, running loops, threads, Ctrl-C, run(), and the mirrored API."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

import toolkit
from toolkit import AsyncClient, Client, ClientClosedError, RecordNotFoundError, run
from toolkit.client import area_names
from toolkit.demo import DemoSite

RUNAWAY = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT COUNT(*) FROM r"


def _client_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t is not threading.main_thread()}


def test_plain_script(site: DemoSite) -> None:
    script = (
        "from toolkit import Client\n"
        "with Client() as c:\n"
        "    print(len(c.images.list()), c.stats().ms_total, c.jobs.get(1).id)\n"
    )
    env = {**site.env, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    images, ms_total, job_id = out.stdout.split()
    assert int(images) > 0 and int(ms_total) > 0 and job_id == "1"


def test_same_results_and_errors_as_the_async_client(site: DemoSite) -> None:
    async def expected() -> tuple[pd.DataFrame, toolkit.Image]:
        async with AsyncClient(**site.settings_kwargs()) as a:
            return await a.images.list(type="pbcor"), await a.images.get(1)

    frame, image = asyncio.run(expected())
    with Client(**site.settings_kwargs()) as client:
        pd.testing.assert_frame_equal(client.images.list(type="pbcor"), frame)
        assert client.images.get(1) == image
        with pytest.raises(RecordNotFoundError):
            client.images.get(10**9)
        assert inspect.getdoc(client.images.list) == inspect.getdoc(
            AsyncClient(**site.settings_kwargs()).images.list
        )


def test_every_async_method_is_mirrored_parameter_by_parameter(site: DemoSite) -> None:
    """Same names, parameters, kinds, defaults and annotations; an async iterator becomes an Iterator."""
    a = AsyncClient(**site.settings_kwargs())
    with Client(**site.settings_kwargs()) as client:
        pairs = [(client, a, n) for n in ("stats", "sql", "provenance")]
        for area in area_names(a):
            for name, method in inspect.getmembers(getattr(a, area)):
                if name.startswith("_") or name == "aclose" or not callable(method):
                    continue
                pairs.append((getattr(client, area), getattr(a, area), name))
        assert len(pairs) >= 39
        for blocking_area, async_area, name in pairs:
            ours, theirs = (
                inspect.signature(getattr(blocking_area, name)),
                inspect.signature(getattr(async_area, name)),
            )
            returns = str(theirs.return_annotation).replace("AsyncIterator[", "Iterator[")
            method = getattr(async_area, name)
            if not inspect.iscoroutinefunction(method) and not inspect.isasyncgenfunction(method):
                returns = f"BlockingContext[{returns}]"  # notes.batch(): used with `with`
            assert ours == theirs.replace(return_annotation=returns), name
            assert inspect.getdoc(getattr(blocking_area, name)) == inspect.getdoc(
                getattr(async_area, name)
            ), name


async def test_works_inside_a_running_event_loop(site: DemoSite) -> None:
    asyncio.get_running_loop()  # as in a Jupyter cell or an ipywidgets callback
    with Client(**site.settings_kwargs()) as client:
        assert len(client.ms.list(limit=3)) == 3
        assert client.sources.lightcurve(client.sources.list(limit=1)["source_id"].iloc[0]).shape[0] > 0


def test_many_threads_at_once(site: DemoSite) -> None:
    with Client(**site.settings_kwargs()) as client:
        ids = client.sources.list()["source_id"].tolist()[:24]
        single = {sid: len(client.sources.lightcurve(sid)) for sid in ids}
        with ThreadPoolExecutor(8) as pool:
            many = dict(zip(ids, pool.map(lambda s: len(client.sources.lightcurve(s)), ids), strict=True))
            stats = list(pool.map(lambda _: client.stats().ms_total, range(8)))
        assert many == single and len(set(stats)) == 1


def test_ctrl_c_interrupts_a_long_call_and_the_client_stays_usable(site: DemoSite) -> None:
    before = _client_threads()
    client = Client(**site.settings_kwargs(), pool_size=1, query_timeout=60)
    client.open()
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))  # a real Ctrl-C
    timer.start()
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        client.sql(RUNAWAY)
    assert time.perf_counter() - started < 10
    # pool_size=1: this answers only if the interrupted query gave its connection back.
    assert len(client.images.list(limit=2)) == 2
    client.close()
    assert client.closed
    with pytest.raises(ClientClosedError):
        client.images.list()
    deadline = time.monotonic() + 5
    while _client_threads() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _client_threads() - before == set()


def test_run_from_plain_code_and_from_inside_a_loop(site: DemoSite) -> None:
    async def count() -> int:
        async with AsyncClient(**site.settings_kwargs()) as c:
            return len(await c.images.list())

    plain = run(count())

    async def inside() -> int:
        refused = count()
        with pytest.raises(RuntimeError):
            asyncio.run(refused)  # what users hit in a notebook
        refused.close()
        return run(count())

    assert asyncio.run(inside()) == plain > 0


def test_follow_is_an_ordinary_iterator(site: DemoSite, tmp_path: Path) -> None:
    log = tmp_path / "job-x.log"
    log.write_text("")

    def writer() -> None:
        for i in range(5):
            time.sleep(0.05)
            with log.open("a") as handle:
                handle.write(f"line {i}\n")

    with Client(products_db=site.products_db, log_dirs=[tmp_path]) as client:
        thread = threading.Thread(target=writer)
        thread.start()
        got = []
        for line in client.logs.follow("job-x", from_end=False, poll_interval=0.02):
            got.append(line)
            if len(got) == 5:
                break
        thread.join()
        assert got == [f"line {i}" for i in range(5)]
        assert client.logs.tail("job-x", n=2).lines == ["line 3", "line 4"]
