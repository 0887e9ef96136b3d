"""Shared fixtures: real demo sites on disk (built once per session) and clients over them."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

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


@pytest.fixture(params=["newer", "older"])
def any_site(request: pytest.FixtureRequest, sites: dict[str, DemoSite]) -> DemoSite:
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
