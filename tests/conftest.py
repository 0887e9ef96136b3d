"""Shared fixtures: real demo sites on disk (built once per session) and clients over them."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from toolkit import AsyncClient
from toolkit.demo import DemoSite, build_demo_site

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _databases(site: DemoSite) -> list[Path]:
    return [p for p in (site.products_db, site.cal_registry_db) if p is not None]


@pytest.fixture(scope="session")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, DemoSite]]:
    """The newer and the older-schema demo sites. Their database files must be unchanged after the suite."""
    built = {
        "newer": build_demo_site(tmp_path_factory.mktemp("newer"), now=NOW),
        "older": build_demo_site(tmp_path_factory.mktemp("older"), schema="older", now=NOW),
    }
    before = {str(p): _digest(p) for site in built.values() for p in _databases(site)}
    yield built
    after = {str(p): _digest(p) for site in built.values() for p in _databases(site)}
    assert after == before, "the test suite changed a pipeline database file"


@pytest.fixture(scope="session")
def site(sites: dict[str, DemoSite]) -> DemoSite:
    return sites["newer"]


@pytest.fixture(scope="session")
def older_site(sites: dict[str, DemoSite]) -> DemoSite:
    return sites["older"]


ENV_TEST_POSTGRES = "CONTIMG_TEST_POSTGRES"  # an admin URL of a PostgreSQL server the tests may use
_MIGRATED_FROM: dict[str, Path] = {}


def source_db(client: AsyncClient, setting: str = "products_db") -> Path:
    """The SQLite file a client's data comes from (for a site migrated to PostgreSQL: the source it was
    copied from), for ``products_db``, ``cal_registry_db`` or ``queue_db``."""
    value = getattr(client.settings, setting)
    if isinstance(value, str):
        return _MIGRATED_FROM[value]
    assert value is not None
    return Path(value)


@dataclass(frozen=True)
class PostgresSite(DemoSite):
    """The newer demo site with its products database migrated into PostgreSQL.

    ``products_db`` stays the SQLite file the data came from (tests read their expectations from it); the
    client is pointed at ``url``.
    """

    url: str = ""
    cal_url: str = ""
    queue_url: str = ""
    admin_url: str = ""  # the products database as the server's superuser (for tests that write)

    def settings_kwargs(self) -> dict[str, Any]:
        return {
            **super().settings_kwargs(),
            "products_db": self.url,
            "cal_registry_db": self.cal_url,
            "queue_db": self.queue_url,
        }


@pytest.fixture(scope="session")
def postgres_site(sites: dict[str, DemoSite]) -> Iterator[PostgresSite]:
    """A fresh database on the test server, loaded by ``contimg migrate``'s code, dropped afterwards."""
    admin = os.environ.get(ENV_TEST_POSTGRES)
    if not admin:
        if os.environ.get("CONTIMG_REQUIRE_POSTGRES"):
            pytest.fail(f"{ENV_TEST_POSTGRES} is required here but not set")
        pytest.skip(f"no PostgreSQL server for the tests ({ENV_TEST_POSTGRES} is not set)")
    import asyncio

    import asyncpg

    from toolkit.migrate import migrate

    name = f"contimg_test_{secrets.token_hex(4)}"
    base = admin.rsplit("/", 1)[0]
    # The client connects as a read-only role, as the README tells sites to (a superuser is refused).
    reader, reader_password = f"{name}_reader", secrets.token_hex(12)
    parts = urllib.parse.urlsplit(base)
    reader_base = f"{parts.scheme}://{reader}:{reader_password}@{parts.hostname}:{parts.port}"
    newer = sites["newer"]
    # Each of the site's three databases goes into its own PostgreSQL database, as a site that moved would.
    sources = {name: newer.products_db, f"{name}_cal": newer.cal_registry_db, f"{name}_queue": newer.queue_db}

    async def create() -> None:
        conn = await asyncpg.connect(admin)
        try:
            for db in sources:
                await conn.execute(f'CREATE DATABASE "{db}"')
            await conn.execute(f"CREATE ROLE \"{reader}\" LOGIN PASSWORD '{reader_password}'")
            await conn.execute(f'GRANT pg_read_all_data TO "{reader}"')
        finally:
            await conn.close()
        for db, source in sources.items():
            assert source is not None
            await migrate(source, f"{base}/{db}")

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        try:
            for db in sources:
                await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            await conn.execute(f'DROP ROLE IF EXISTS "{reader}"')
        finally:
            await conn.close()

    asyncio.run(create())
    for db, source in sources.items():
        assert source is not None
        _MIGRATED_FROM[f"{reader_base}/{db}"] = source
    yield PostgresSite(
        **{f.name: getattr(newer, f.name) for f in fields(DemoSite)},
        url=f"{reader_base}/{name}",
        cal_url=f"{reader_base}/{name}_cal",
        queue_url=f"{reader_base}/{name}_queue",
        admin_url=f"{base}/{name}",
    )
    asyncio.run(drop())


@pytest.fixture(params=["newer", "older", "postgres"])
def any_site(request: pytest.FixtureRequest, sites: dict[str, DemoSite]) -> DemoSite:
    if request.param == "postgres":
        site: DemoSite = request.getfixturevalue("postgres_site")
        return site
    return sites[request.param]


@pytest.fixture
async def client(any_site: DemoSite) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(**any_site.settings_kwargs()) as c:
        yield c


@pytest.fixture
async def newer_client(site: DemoSite) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(**site.settings_kwargs()) as c:
        yield c


# Debian's Chromium driven by Playwright (never a downloaded browser); the flags keep it off the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Chromium's path; skips the test where it is missing, fails it where CI requires a browser."""
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CONTIMG_REQUIRE_BROWSER"):
            pytest.fail("Chromium is required here (CONTIMG_REQUIRE_BROWSER) but is not installed")
        pytest.skip("Debian's chromium is not installed (`apt-get install chromium`)")
    return path


def _postgres_admin() -> str:
    admin = os.environ.get(ENV_TEST_POSTGRES)
    if not admin:
        if os.environ.get("CONTIMG_REQUIRE_POSTGRES"):
            pytest.fail(f"{ENV_TEST_POSTGRES} is required here but not set")
        pytest.skip(f"no PostgreSQL server for the tests ({ENV_TEST_POSTGRES} is not set)")
    return admin


@contextlib.contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A new, empty database on the test server (dropped afterwards); its URL, as the server's superuser."""
    import asyncio

    import asyncpg

    admin = _postgres_admin()
    name = f"{prefix}_{secrets.token_hex(4)}"

    async def run(statement: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def notes_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | str]:
    """An empty notes database of each kind: a SQLite path (not yet created) or a PostgreSQL URL."""
    if request.param == "sqlite":
        yield tmp_path / "notes.sqlite"
        return
    with postgres_database("contimg_notes") as url:
        yield url


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (Debian's package) on a free loopback port, started for the session and stopped
    after it; its URL. Skips where redis-server is missing, fails where CI requires it."""
    import socket
    import subprocess
    import time

    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CONTIMG_REQUIRE_REDIS"):
            pytest.fail("redis-server is required here (CONTIMG_REQUIRE_REDIS) but is not installed")
        pytest.skip(
            "redis-server is not installed (`apt-get install redis-server`): the job-queue tests skip"
        )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start on port {port}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=20)
