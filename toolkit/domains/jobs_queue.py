"""The pipeline's job queue: RQ on Redis, read-only (``client.jobs_queue``).

Not to be confused with ``client.queue``, the converter's ingest queue database. Every call sends read
commands only (LRANGE, ZREVRANGE, LLEN, ZCARD, SCARD, HGETALL, XREVRANGE), in one pipelined round trip per
step, bounded by the query timeout. Decoding lives in :mod:`toolkit.rqdata` (pure, and wary of pickles).
"""

from __future__ import annotations

import asyncio
import builtins
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import rqdata
from ..arguments import check_choices, check_count, check_text
from ..db.connections import Connections
from ..errors import (
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseQueryError,
    QueryTimeoutError,
    RecordNotFoundError,
    ValidationError,
)
from ..records import PipelineJob, PipelineQueueStats
from ..settings import ENV_QUEUE_NAME, ENV_REDIS_URL

if TYPE_CHECKING:
    from redis.asyncio import Redis

MAX_LIMIT = 10_000
LIST_COLUMNS = [
    "job_id", "status", "func_name", "args", "description", "origin", "created_at", "enqueued_at",
    "started_at", "ended_at", "duration_s", "worker_name", "error", "result", "result_note",
]  # fmt: skip


def _shown(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    return url.replace(f":{parsed.password}@", ":***@") if parsed.password else url


class JobsQueue:
    def __init__(self, connections: Connections) -> None:
        self._connections = connections
        self._redis: Redis | None = None

    @property
    def _queue(self) -> str:
        return self._connections.settings.queue_name

    async def _server(self) -> Redis:
        if self._connections.closed:
            await self._connections.products()  # raises ClientClosedError
        settings = self._connections.settings
        if settings.redis_url is None:
            raise ConfigurationError(
                f"no job queue configured: set {ENV_REDIS_URL} to the pipeline's Redis (redis://host:6379/0), "
                f"and {ENV_QUEUE_NAME} if its queue is not {settings.queue_name!r}"
            )
        if self._redis is None:
            from redis.asyncio import Redis

            self._redis = Redis.from_url(
                settings.redis_url,
                socket_connect_timeout=settings.connect_timeout,
                socket_timeout=settings.query_timeout,
                decode_responses=False,
            )
        return self._redis

    async def _ask(self, build: Callable[[Any], None]) -> list[Any]:
        """One pipelined round trip of read commands (added by ``build``), bounded by the query timeout."""
        from redis import exceptions

        server = await self._server()
        url = _shown(str(self._connections.settings.redis_url))
        timeout = self._connections.settings.query_timeout
        try:
            async with server.pipeline(transaction=False) as pipe:
                build(pipe)
                return list(await asyncio.wait_for(pipe.execute(), timeout))
        except TimeoutError as exc:
            raise QueryTimeoutError(f"the job queue at {url} did not answer within {timeout:g} s") from exc
        except exceptions.AuthenticationError as exc:
            raise DatabaseConnectionError(f"the job queue at {url} refused the credentials: {exc}") from exc
        except (exceptions.ConnectionError, exceptions.TimeoutError, OSError) as exc:
            raise DatabaseConnectionError(f"cannot reach the job queue at {url}: {exc}") from exc
        except exceptions.ResponseError as exc:
            raise DatabaseQueryError(
                f"the job queue at {url} is not laid out as RQ lays it out: {exc}"
            ) from exc
        except exceptions.RedisError as exc:
            raise DatabaseQueryError(f"the job queue at {url} failed: {exc}") from exc

    async def stats(self) -> PipelineQueueStats:
        """How many jobs are in each state (queued, started, finished, failed, deferred, scheduled, canceled)
        and how many workers listen to the queue: one round trip."""
        q = self._queue

        def build(pipe: Any) -> None:
            pipe.llen(rqdata.STATUS_KEYS["queued"].format(q=q))
            for status, key in rqdata.STATUS_KEYS.items():
                if status != "queued":
                    pipe.zcard(key.format(q=q))
            pipe.scard(f"rq:workers:{q}")

        *counts, workers = await self._ask(build)
        return PipelineQueueStats(
            q, dict(zip(rqdata.STATUS_KEYS, map(int, counts), strict=True)), int(workers)
        )

    async def list(self, *, status: str | builtins.list[str] | None = None, limit: int = 100) -> pd.DataFrame:
        """Jobs of the queue, newest first (by enqueue time), at most ``limit`` (1 to 10,000): job_id, status,
        function and arguments, times, duration_s, worker, the error line of a failed job, and the result
        of a finished one when it is plain data (see :meth:`get`). ``status`` is one state or a list:
        queued, started, finished, failed, deferred, scheduled or canceled."""
        wanted = check_choices(status, "status") or builtins.list(rqdata.STATUS_KEYS)
        unknown = sorted(set(wanted) - set(rqdata.STATUS_KEYS))
        if unknown:
            raise ValidationError(
                f"unknown status {unknown}; the queue's states are {', '.join(rqdata.STATUS_KEYS)}"
            )
        limit = check_count(limit, "limit", low=1, high=MAX_LIMIT)
        q = self._queue

        def ids(pipe: Any) -> None:
            for name in wanted:
                key = rqdata.STATUS_KEYS[name].format(q=q)
                if name == "queued":
                    pipe.lrange(key, -limit, -1)  # RQ appends: the newest are at the end
                else:
                    pipe.zrevrange(key, 0, limit - 1)

        found = await self._ask(ids)
        job_ids: builtins.list[str] = []
        for name, raw in zip(wanted, found, strict=True):
            ordered = builtins.list(reversed(raw)) if name == "queued" else raw
            job_ids += [rqdata.registry_job_id(member, name) for member in ordered]
        job_ids = builtins.list(dict.fromkeys(job_ids))
        rows = [v for v in await self._jobs(job_ids) if v is not None]
        frame = pd.DataFrame(rows, columns=[*LIST_COLUMNS, "traceback", "result_pickle"])
        for column in ("created_at", "enqueued_at", "started_at", "ended_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        frame["duration_s"] = (frame["ended_at"] - frame["started_at"]).dt.total_seconds()
        frame = frame.sort_values(
            ["enqueued_at", "created_at"], ascending=False, na_position="last", kind="stable"
        )
        return frame[LIST_COLUMNS].head(limit).reset_index(drop=True)

    async def _jobs(self, job_ids: builtins.list[str]) -> builtins.list[dict[str, Any] | None]:
        """Each job's values (None for an id whose hash has expired): its hash and newest result, in one
        round trip for all of them."""
        if not job_ids:
            return []

        def build(pipe: Any) -> None:
            for job_id in job_ids:
                pipe.hgetall(f"rq:job:{job_id}")
                pipe.xrevrange(f"rq:results:{job_id}", "+", "-", count=1)

        answers = await self._ask(build)
        out: builtins.list[dict[str, Any] | None] = []
        for k, job_id in enumerate(job_ids):
            fields, results = answers[2 * k], answers[2 * k + 1]
            if not fields:
                out.append(None)
                continue
            out.append(rqdata.job_values(job_id, fields, results[0][1] if results else None))
        return out

    async def get(self, job_id: str) -> PipelineJob:
        """One job, with its error and full traceback when it failed and its result when it finished.

        RQ stores results as pickles, and unpickling runs code, so the toolkit loads plain data only (numbers,
        text, lists, dicts, ...): for anything else ``result`` is None, ``result_note`` names the class, and
        ``result_pickle`` keeps the bytes (``pickle.loads`` them yourself only if you trust everyone who can
        write to that Redis). ``RecordNotFoundError`` for an unknown or expired job."""
        check_text(job_id, "job_id")
        if len(job_id) > 512 or "\x00" in job_id:
            raise ValidationError("job_id is at most 512 characters, without NUL")
        values = (await self._jobs([job_id]))[0]
        if values is None:
            raise RecordNotFoundError(
                "queue job", job_id, f"not in {self._queue!r} (or its result has expired)"
            )
        return PipelineJob(**values)

    async def aclose(self) -> None:
        if self._redis is not None:
            redis, self._redis = self._redis, None
            await redis.aclose()
