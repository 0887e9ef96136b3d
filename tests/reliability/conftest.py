"""Fixtures for the reliability suite: sites a test may write to, and the thread and file checks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from toolkit.demo import DemoSite, build_demo_site

from ..conftest import NOW


@pytest.fixture
def writable_site(tmp_path: Path) -> DemoSite:
    """A demo site of its own, so a test's writer never touches the suite's shared files."""
    return build_demo_site(tmp_path / "site", now=NOW)


def digests(site: DemoSite) -> dict[str, str]:
    """Hashes of the pipeline's database files (the toolkit must never change them)."""
    files = [site.products_db, site.cal_registry_db, site.queue_db]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p is not None}
