"""The pipeline's RQ job queue on a real redis-server, filled by rq itself: queued, started, finished, failed."""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue, SimpleWorker

from tests import rq_jobs
from toolkit import (
    AsyncClient,
    Client,
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseQueryError,
    RecordNotFoundError,
    ValidationError,
)
from toolkit.cli import main
from toolkit.demo import DemoSite
from toolkit.rqdata import MAX_DECODED, job_values

QUEUE = "dsa110-pipeline"
ROOT = Path(__file__).resolve().parents[2]
# What a read-only client may send (redis-py names itself with CLIENT SETINFO on connect).
READ_COMMANDS = {
    "lrange",
    "zrevrange",
    "llen",
    "zcard",
    "scard",
    "hgetall",
    "xrevrange",
    "client|setinfo",
    "hello",
}


@pytest.fixture(scope="module")
def filled_queue(redis_server: str) -> Iterator[str]:
    """The queue as the pipeline leaves it: two finished jobs, a failed one, one running, one waiting."""
    redis = Redis.from_url(redis_server)
    redis.flushdb()
    queue = Queue(QUEUE, connection=redis)
    queue.enqueue(rq_jobs.add, 2, 3, job_id="ok-1", description="add two numbers")
    queue.enqueue(rq_jobs.boom, 7, job_id="bad-1")
    queue.enqueue(rq_jobs.thing, 5, job_id="obj-1")
    # rq's worker installs its own SIGINT/SIGTERM handlers and leaves them: put pytest's back, or a later
    # test's real Ctrl-C raises rq's StopRequested instead of KeyboardInterrupt.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        SimpleWorker([queue], connection=redis).work(burst=True)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    queue.enqueue(rq_jobs.slow, 120, job_id="slow-1")
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, redis_server, QUEUE],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while redis.hget("rq:job:slow-1", "status") != b"started":
            assert time.monotonic() < deadline and worker.poll() is None, "the rq worker did not start slow-1"
            time.sleep(0.1)
        queue.enqueue(rq_jobs.add, 1, 1, job_id="queued-1")
        yield redis_server
    finally:
        worker.kill()
        worker.wait(timeout=20)
        redis.close()


WORKER = """
import sys
from redis import Redis
from rq import SimpleWorker, Queue
redis = Redis.from_url(sys.argv[1])
SimpleWorker([Queue(sys.argv[2], connection=redis)], connection=redis).work(burst=True)
"""


@pytest.fixture
async def queue_client(site: DemoSite, filled_queue: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(**site.settings_kwargs(), redis_url=filled_queue) as client:
        yield client


def _command_counts(redis_url: str) -> dict[str, int]:
    with Redis.from_url(redis_url) as redis:
        stats = redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


async def test_stats_list_and_get_read_what_rq_wrote(queue_client: AsyncClient, filled_queue: str) -> None:
    before = _command_counts(filled_queue)
    stats = await queue_client.jobs_queue.stats()
    assert stats.queue_name == QUEUE and stats.workers >= 1
    assert {k: v for k, v in stats.counts.items() if v} == {
        "queued": 1,
        "started": 1,
        "finished": 2,
        "failed": 1,
    }
    frame = await queue_client.jobs_queue.list()
    assert sorted(frame["job_id"]) == ["bad-1", "obj-1", "ok-1", "queued-1", "slow-1"]
    assert frame["enqueued_at"].is_monotonic_decreasing and frame["job_id"].iloc[0] == "queued-1"
    by_id = frame.set_index("job_id")
    assert by_id.loc["ok-1", "status"] == "finished" and by_id.loc["ok-1", "result"] == 5
    assert by_id.loc["slow-1", "status"] == "started" and by_id.loc["queued-1", "status"] == "queued"
    assert by_id.loc["bad-1", "error"] == "ValueError: bad value 7"
    assert by_id.loc["ok-1", "duration_s"] >= 0 and by_id.loc["ok-1", "description"] == "add two numbers"
    failed = await queue_client.jobs_queue.list(status="failed")
    assert failed["job_id"].tolist() == ["bad-1"]
    both = await queue_client.jobs_queue.list(status=["queued", "started"], limit=1)
    assert both["job_id"].tolist() == ["queued-1"]
    ok = await queue_client.jobs_queue.get("ok-1")
    assert (ok.result, ok.func_name, ok.args, ok.error) == (5, "tests.rq_jobs.add", "2, 3", None)
    assert ok.duration is not None and ok.worker_name
    bad = await queue_client.jobs_queue.get("bad-1")
    assert bad.status == "failed" and bad.error == "ValueError: bad value 7"
    assert bad.traceback is not None and "Traceback (most recent call last)" in bad.traceback
    assert 'raise ValueError(f"bad value {x}")' in bad.traceback
    obj = await queue_client.jobs_queue.get("obj-1")
    assert obj.result is None and obj.result_note is not None and "tests.rq_jobs.Thing" in obj.result_note
    assert obj.result_pickle is not None and pickle.loads(obj.result_pickle).v == 5  # kept for who trusts it
    # Read commands only: nothing the toolkit sent could have written.
    after = _command_counts(filled_queue)
    sent = {name for name, calls in after.items() if calls > before.get(name, 0)} - {"info"}
    assert sent <= READ_COMMANDS, sent - READ_COMMANDS


async def test_a_pickle_that_would_run_code_is_never_unpickled(
    queue_client: AsyncClient, filled_queue: str, tmp_path: Path
) -> None:
    witness = tmp_path / "ran"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {witness}",))

    payload = base64.b64encode(pickle.dumps(Evil()))
    with Redis.from_url(filled_queue) as redis:
        redis.hset("rq:job:evil-1", mapping={"status": "finished", "origin": QUEUE, "data": b"not zlib"})
        redis.xadd("rq:results:evil-1", {"type": "1", "return_value": payload})
        redis.hset(
            "rq:job:huge-1", mapping={"status": "failed", "exc_info": zlib.compress(b"x" * (64 * 2**20))}
        )
    evil = await queue_client.jobs_queue.get("evil-1")
    assert evil.result is None and evil.result_note is not None and "system" in evil.result_note
    assert not witness.exists()
    assert evil.func_name is None  # its data is not a zlib pickle: left alone, no error
    huge = await queue_client.jobs_queue.get("huge-1")  # a 64 MiB traceback: decoded up to the bound
    assert huge.traceback is not None and len(huge.traceback) == MAX_DECODED


def test_older_rq_keeps_results_and_tracebacks_in_the_hash() -> None:
    fields = {
        b"status": b"finished",
        b"result": pickle.dumps({"images": ["/stage/a.fits"], "ok": True}),
        b"data": zlib.compress(
            pickle.dumps(("pipeline.image_ms", None, ("/stage/ms/a.ms",), {"niter": 1000}))
        ),
        b"enqueued_at": b"2025-10-05T12:00:00.5Z",
        b"timeout": b"3600",
    }
    values = job_values("old-1", fields, None)
    assert values["result"] == {"images": ["/stage/a.fits"], "ok": True} and values["result_note"] is None
    assert (values["func_name"], values["args"]) == ("pipeline.image_ms", "'/stage/ms/a.ms', niter=1000")
    assert (
        values["enqueued_at"].isoformat() == "2025-10-05T12:00:00.500000+00:00"
        and values["timeout_s"] == 3600
    )
    failed = job_values(
        "old-2", {b"status": b"failed", b"exc_info": zlib.compress(b"Traceback\nKeyError: 'x'\n")}, None
    )
    assert failed["error"] == "KeyError: 'x'"
    plain = job_values(
        "old-3", {b"exc_info": b"Traceback\nOSError: disk full"}, None
    )  # not compressed at all
    assert plain["error"] == "OSError: disk full"
    broken = job_values("old-4", {b"result": b"\x80\x05garbage"}, None)
    assert broken["result"] is None and "not a readable pickle" in broken["result_note"]


async def test_queue_errors_are_ours(site: DemoSite, filled_queue: str, redis_server: str) -> None:
    async with AsyncClient(**site.settings_kwargs()) as client:
        with pytest.raises(ConfigurationError, match="PIPELINE_REDIS_URL"):
            await client.jobs_queue.list()
    async with AsyncClient(
        **site.settings_kwargs(), redis_url="redis://127.0.0.1:9/0", connect_timeout=2
    ) as client:
        with pytest.raises(DatabaseConnectionError, match="cannot reach the job queue"):
            await client.jobs_queue.stats()
    with Redis.from_url(redis_server) as redis:
        redis.set("rq:queue:not-a-list", "oops")
    async with AsyncClient(
        **site.settings_kwargs(), redis_url=redis_server, queue_name="not-a-list"
    ) as client:
        with pytest.raises(DatabaseQueryError, match="not laid out as RQ"):
            await client.jobs_queue.list(status="queued")
        empty = await client.jobs_queue.list(
            status="failed"
        )  # a queue with no failures: no rows, same columns
        assert empty.empty and "error" in empty.columns
        with pytest.raises(RecordNotFoundError):
            await client.jobs_queue.get("no-such-job")
        for bad in ({"status": "exploded"}, {"limit": 0}, {"limit": 10**6}, {"status": 5}):
            with pytest.raises(ValidationError):
                await client.jobs_queue.list(**bad)  # type: ignore[arg-type]
        for job_id in ("", "x" * 600, "a\x00b"):
            with pytest.raises(ValidationError):
                await client.jobs_queue.get(job_id)
    with pytest.raises(ValidationError, match="redis://host:port/db"):
        AsyncClient(products_db=site.products_db, redis_url="http://localhost")


def test_blocking_client_and_cli(site: DemoSite, filled_queue: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with Client(**site.settings_kwargs(), redis_url=filled_queue) as client:
        assert client.jobs_queue.get("ok-1").result == 5
        assert len(client.jobs_queue.list(limit=3)) == 3
    for name, value in {**site.env, "PIPELINE_REDIS_URL": filled_queue}.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    assert main(["jobs-queue", "--status", "failed", "--format", "json"], out=out) == 0
    rows = json.loads(out.getvalue())
    assert [r["job_id"] for r in rows] == ["bad-1"] and rows[0]["error"] == "ValueError: bad value 7"
    out = io.StringIO()
    assert main(["jobs-queue", "--job", "bad-1"], out=out) == 0
    assert "ValueError: bad value 7" in out.getvalue() and "Traceback" in out.getvalue()
    out = io.StringIO()
    assert main(["jobs-queue", "--stats"], out=out) == 0
    assert "finished" in out.getvalue() and "workers" in out.getvalue()
