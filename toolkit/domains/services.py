"""``client.services``: is everything the toolkit reads there and healthy?

One row per check: each configured database (opens read-only, size, WAL size, last change), each log
folder (exists, readable, free disk), and each network endpoint from the settings (TCP connect, or an HTTP
GET of its health path). All checks run at once, each bounded by ``timeout``, so ``status()`` returns within
the largest timeout however many services are down. Database probes are the backends' own (`db.sqlite.probe`,
`db.postgres.probe`); file checks run in bounded daemon threads; the network
checks are plain asyncio streams.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import pandas as pd

from ..db.base import Probe
from ..db.connections import Connections
from ..db.daemon import in_daemon_thread
from ..db.sqlite import probe as sqlite_probe
from ..errors import ClientClosedError, RecordNotFoundError, ValidationError
from ..records import Record
from ..settings import Endpoint

Status = Literal["running", "degraded", "stopped", "error"]
DEFAULT_TIMEOUT = 2.0
# A WAL this large that is also larger than its database means checkpoints are not keeping up.
LARGE_WAL_BYTES = 64 * 2**20
LOW_DISK_BYTES = 2**30
_DTYPES = {
    "response_ms": "float64",
    "size_bytes": "Int64",
    "wal_bytes": "Int64",
    "free_bytes": "Int64",
    "modified_at": "datetime64[us, UTC]",
}
COLUMNS = [
    "name",
    "kind",
    "target",
    "status",
    "response_ms",
    "error",
    "size_bytes",
    "wal_bytes",
    "modified_at",
    "free_bytes",
]


@dataclass(frozen=True)
class ServiceCheck(Record):
    _title_field: ClassVar[str] = "name"

    name: str
    kind: str  # database, log_dir, tcp, http
    target: str
    status: Status
    response_ms: float | None
    error: str | None
    size_bytes: int | None = None
    wal_bytes: int | None = None
    modified_at: datetime | None = None
    free_bytes: int | None = None


def _database_check(name: str, target: str, probe: Probe, started: float) -> ServiceCheck:
    """A database's probe as a check: running, degraded (a WAL that checkpoints do not keep up with),
    stopped (the server refused) or error."""
    ms = (time.perf_counter() - started) * 1000
    if not probe.reachable:
        status: Status = "stopped" if probe.refused else "error"
        return ServiceCheck(name, "database", target, status, ms, probe.error)
    modified = datetime.fromtimestamp(probe.modified, tz=UTC) if probe.modified is not None else None
    extra: dict[str, Any] = {
        "size_bytes": probe.size_bytes,
        "wal_bytes": probe.wal_bytes,
        "modified_at": modified,
    }
    wal, size = probe.wal_bytes or 0, probe.size_bytes or 0
    if wal > LARGE_WAL_BYTES and wal > size:
        error = f"WAL is {wal:,} bytes, larger than the database: checkpoints lag"
        return ServiceCheck(name, "database", target, "degraded", ms, error, **extra)
    return ServiceCheck(name, "database", target, "running", ms, None, **extra)


def _log_dir(name: str, path: Path) -> ServiceCheck:
    started = time.perf_counter()

    def done(status: Status, error: str | None = None, free: int | None = None) -> ServiceCheck:
        return ServiceCheck(
            name, "log_dir", str(path), status, (time.perf_counter() - started) * 1000, error, free_bytes=free
        )

    if not path.is_dir():
        return done("error", "folder does not exist")
    if not os.access(path, os.R_OK | os.X_OK):
        return done("error", "folder is not readable by this user")
    free = shutil.disk_usage(path).free
    if free < LOW_DISK_BYTES:
        return done("degraded", f"only {free:,} bytes free on its disk", free)
    return done("running", None, free)


async def _network(endpoint: Endpoint, limit: float) -> ServiceCheck:
    started = time.perf_counter()

    def done(status: Status, error: str | None = None) -> ServiceCheck:
        return ServiceCheck(
            endpoint.name,
            endpoint.scheme if endpoint.scheme == "tcp" else "http",
            endpoint.url,
            status,
            (time.perf_counter() - started) * 1000,
            error,
        )

    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(limit):
            reader, writer = await asyncio.open_connection(
                endpoint.host, endpoint.port, ssl=True if endpoint.scheme == "https" else None
            )
            if endpoint.scheme == "tcp":
                return done("running")
            request = (
                f"GET {endpoint.path or '/'} HTTP/1.1\r\nHost: {endpoint.host}\r\nConnection: close\r\n\r\n"
            )
            writer.write(request.encode("ascii"))
            await writer.drain()
            line = (await reader.readline()).decode("latin-1").strip()
    except TimeoutError:
        return done("error", f"no answer within {limit:g} s")
    except ConnectionRefusedError:
        return done("stopped", "connection refused")
    except OSError as exc:
        return done("error", str(exc) or type(exc).__name__)
    finally:
        if writer is not None:
            writer.close()
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return done("error", f"not an HTTP answer: {line[:80]!r}")
    code = int(parts[1])
    if 200 <= code < 300:
        return done("running")
    return done("degraded", f"HTTP {code} {parts[2] if len(parts) > 2 else ''}".strip())


class Services:
    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def _planned(self) -> list[tuple[str, str, Any]]:
        s = self._connections.settings
        planned: list[tuple[str, str, Any]] = []
        for name in ("products_db", "cal_registry_db", "queue_db"):
            path = getattr(s, name)
            if path is not None:
                planned.append((name, "database", path))
        for k, folder in enumerate(s.log_dirs):
            planned.append((f"log_dir[{k}]" if len(s.log_dirs) > 1 else "log_dir", "log_dir", folder))
        for endpoint in s.services:
            planned.append((endpoint.name, "network", endpoint))
        return planned

    async def _run(self, planned: list[tuple[str, str, Any]], limit: float) -> list[ServiceCheck]:
        async def one(name: str, kind: str, target: Any) -> ServiceCheck:
            if kind == "network":
                return await _network(target, limit)
            started = time.perf_counter()
            if isinstance(target, str):  # a postgresql:// URL
                from ..db.postgres import probe, redacted

                return _database_check(name, redacted(target), await probe(target, limit), started)
            try:
                if kind == "database":
                    found = await in_daemon_thread(sqlite_probe, target, seconds=limit)
                    return _database_check(name, str(target), found, started)
                return await in_daemon_thread(_log_dir, name, target, seconds=limit)
            except TimeoutError:
                return ServiceCheck(
                    name, kind, str(target), "error", limit * 1000, f"no answer within {limit:g} s"
                )

        return list(await asyncio.gather(*(one(*p) for p in planned)))

    async def status(
        self, name_or_port: str | int | None = None, *, check_timeout: float = DEFAULT_TIMEOUT
    ) -> Any:
        """Every check as a DataFrame (status running / degraded / stopped / error, response time in ms, the
        error), or one check as a ``ServiceCheck`` when a name or an endpoint's port is given. Every check
        runs at once and is bounded by ``check_timeout`` seconds, so the call takes at most about that long."""
        if self._connections.closed:
            raise ClientClosedError("this client is closed; make a new one (or use `async with`)")
        timeout = check_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ValidationError(f"check_timeout must be a positive number of seconds, got {timeout!r}")
        planned = self._planned()
        if name_or_port is None:
            checks = await self._run(planned, timeout)
            frame = pd.DataFrame([c.to_dict() for c in checks], columns=COLUMNS)
            return frame.astype(_DTYPES)
        chosen = [
            p
            for p in planned
            if p[0] == name_or_port
            or (isinstance(name_or_port, int) and isinstance(p[2], Endpoint) and p[2].port == name_or_port)
        ]
        if not chosen:
            known = ", ".join(p[0] for p in planned) or "none configured"
            raise RecordNotFoundError("service check", name_or_port, f"known checks: {known}")
        return (await self._run(chosen[:1], timeout))[0]
