"""The demo sites stay the same for a given seed.

The digests below were taken from the single-module generator (``toolkit/demo.py`` at 54e1a25) before it became
the ``toolkit.demo`` package; a change to the generator that alters any table, row or log line fails here, and
a deliberate change to the demo data updates them in the same commit. The notes database (the toolkit's
own, added with client.notes) was pinned when it was added; the pipeline's digests did not change then. The
products digests changed once, deliberately, when the newest images stopped being dated up to half an hour
after "now" (seed 7's site had none there, so it kept its digest).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from toolkit.demo import build_demo_site

from .fingerprint import site_digest

NOW = datetime(2025, 10, 6, 18, tzinfo=UTC)

EXPECTED: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "newer": (
        {},
        {
            "cal_registry.sqlite3": "c6c66aea1ff0660a1595746a9e2fd089fc88a651ee9f30459e853c1b4031a0f1",
            "ingest_queue.sqlite3": "85f717d364253449b5a3ac80be913477ac457fa0e62b97aac26087a5209eaa75",
            "products.sqlite3": "ffac08a02e5a7f2f3b2917d3a4c6150ae5194790b54bc9ce096ddc52a4b0e434",
            "logs": "827ed292427bdcfa3a37fccf92420df118eef28ebc3eb5cfa6a989d89e0d7eb1",
            "notes.sqlite3": "ec30041caade9cb52e70c652d2d67b9959953261180db4555c23637c194bb3f8",
        },
    ),
    "older": (
        {"schema": "older"},
        {
            "cal_registry.sqlite3": "2551130a00657cf19545d582ab592ebea2429bfe83f4bb31ba3d38e3097ffc9f",
            "ingest_queue.sqlite3": "00be453e660467fb42e242147775c1ad9f26facc492a10a88b8dceff5f967756",
            "products.sqlite3": "6b17e45d0a4dec0b46a1af11fa706ebea33adbd44a037c4be4ad06b04a7a39ae",
            "logs": "a0024c2f7bfcc7b9a37f505bc19de92827d3f37742a7549217a838644401d299",
            "notes.sqlite3": "ec30041caade9cb52e70c652d2d67b9959953261180db4555c23637c194bb3f8",
        },
    ),
    "calibration in products, seed 7": (
        {"calibration_in_products": True, "seed": 7},
        {
            "ingest_queue.sqlite3": "66998b77203f2203aa33228f7b66caab16d9df0507f8c56cc27b0c6fd01c40b5",
            "products.sqlite3": "c5ad13e598a3263323a0c146b3f26ea7fb641c71c53c307637e45af0e877ee27",
            "logs": "e04c2cd7115680a7044b05ed6e7c0c718431de5aa7e13e5007496510f743affb",
            "notes.sqlite3": "b8e6b38c8672d17e4def8fc66ff3b0765c71570feed3812ad07b8a548746fea8",
        },
    ),
}


@pytest.mark.parametrize("case", list(EXPECTED))
def test_demo_site_matches_its_fingerprint(case: str, tmp_path: Path) -> None:
    options, expected = EXPECTED[case]
    build_demo_site(tmp_path, now=NOW, **options)
    assert site_digest(tmp_path) == expected


def test_the_fingerprint_sees_a_changed_seed(tmp_path: Path) -> None:
    build_demo_site(tmp_path, now=NOW, seed=111)
    digest = site_digest(tmp_path)
    assert digest["products.sqlite3"] != EXPECTED["newer"][1]["products.sqlite3"]
    assert digest["cal_registry.sqlite3"] != EXPECTED["newer"][1]["cal_registry.sqlite3"]


def test_nothing_in_the_demo_happens_after_now(tmp_path: Path) -> None:
    site = build_demo_site(tmp_path, now=NOW)
    with sqlite3.connect(f"file:{site.products_db}?mode=ro", uri=True) as conn:
        for table, column in (
            ("images", "created_at"),
            ("ms_index", "created_at"),
            ("ms_index", "stage_updated_at"),
            ("jobs", "created_at"),
            ("jobs", "finished_at"),
        ):
            (latest,) = conn.execute(f"SELECT MAX({column}) FROM {table}").fetchone()
            assert latest <= NOW.timestamp(), (table, column, datetime.fromtimestamp(latest, UTC))
