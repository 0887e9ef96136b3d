"""``area.page``: walked page by page it gives exactly ``area.list``'s rows for the same filters, in its order,
on the newer, older-schema and PostgreSQL sites."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from toolkit import AsyncClient, Cursor, ValidationError
from toolkit.domains import cal, images, jobs, ms, queue, sources

# area -> (its keyset declaration, filter sets to compare with list())
AREAS: dict[str, tuple[Any, list[dict[str, Any]]]] = {
    "images": (
        images.LISTING,
        [{}, {"type": "pbcor"}, {"type": ["image", "mosaic"], "search": "T1"}, {"since": "2025-10-06T06:00"}],
    ),
    "ms": (ms.LISTING, [{}, {"stage": ["imaged", "calibrated"], "status": "completed"}, {"search": "t0"}]),
    "jobs": (jobs.LISTING, [{}, {"status": "failed"}, {"search": "T2", "until": "2025-10-06T12:00"}]),
    "sources": (sources.LISTING, [{}, {"min_detections": 40, "search": "j0"}]),
    "cal": (cal.LISTING, [{}, {"status": "active"}, {"table_type": ["K", "GP"], "search": "3c"}]),
    "queue": (queue.LISTING, [{}, {"state": "completed"}]),
}


def key_of(area_name: str) -> str:
    return str(AREAS[area_name][0].keyset.key_column)


@pytest.mark.parametrize("area_name", list(AREAS))
async def test_pages_hold_exactly_the_rows_of_list_for_the_same_filters(
    client: AsyncClient, area_name: str
) -> None:
    area = getattr(client, area_name)
    key = key_of(area_name)
    for filters in AREAS[area_name][1]:
        listed = await area.list(**filters)
        pages = [await area.page(filters, size=37)]
        while pages[-1].next is not None:
            pages.append(await area.page(filters, size=37, after=pages[-1].next, count=False))
        keys = [k for page in pages for k in page.rows[key]]
        assert len(keys) == len(set(keys)), "a row was shown twice"
        assert sorted(map(str, keys)) == sorted(map(str, listed[key])), filters
        assert list(pages[0].rows.columns) == list(listed.columns)
        assert pages[0].count == len(listed) and not pages[0].capped
        assert pages[0].previous is None and pages[-1].next is None
        assert all(len(p) == 37 for p in pages[:-1])


@pytest.mark.parametrize("area_name", ["images", "ms", "jobs", "cal", "queue"])
async def test_every_sort_walks_the_same_order_forwards_and_backwards(
    client: AsyncClient, area_name: str
) -> None:
    area = getattr(client, area_name)
    listing = AREAS[area_name][0]
    key = listing.keyset.key_column
    for sort in listing.keyset.sorts:
        for descending in (True, False):
            order = {"sort": sort, "descending": descending}
            first = await area.page({}, size=37, **order)
            forward = [first]
            while forward[-1].next is not None:
                forward.append(await area.page({}, size=37, after=forward[-1].next, count=False, **order))
            keys = [k for page in forward for k in page.rows[key]]
            # The sort column is monotonic (NULLs below every value, as SQLite sorts them).
            values = pd.concat([p.rows[sort] for p in forward], ignore_index=True)
            present = values.dropna()
            pairs = list(zip(present.iloc[:-1], present.iloc[1:], strict=True))
            assert all((a >= b) if descending else (a <= b) for a, b in pairs), (sort, descending)
            nulls = values.isna().to_numpy()
            if nulls.any():
                where = nulls.nonzero()[0]
                assert (
                    where
                    == (range(len(values) - len(where), len(values)) if descending else range(len(where)))
                ).all()
            # From the last page back to the first by ``previous`` gives the same rows in the same order.
            backward = [await area.page({}, size=37, last=True, count=False, **order)]
            while backward[-1].previous is not None:
                backward.append(
                    await area.page({}, size=37, before=backward[-1].previous, count=False, **order)
                )
            back_keys = [k for page in reversed(backward) for k in page.rows[key]]
            assert back_keys == keys, (sort, descending)
            # Jumping to a page by number lands where walking does.
            if len(forward) >= 3:
                third = await area.page({}, size=37, number=3, count=False, **order)
                assert list(third.rows[key]) == list(forward[2].rows[key])
                assert third.previous is not None


async def test_a_page_beyond_the_end_is_empty_and_says_so(client: AsyncClient) -> None:
    far = await client.images.page(number=10_000, size=50)
    assert len(far) == 0 and far.next is None and far.previous is None
    assert far.count is not None and far.count > 0
    assert "path" in far.rows.columns


async def test_page_arguments_are_checked(client: AsyncClient) -> None:
    with pytest.raises(ValidationError, match=r"cannot sort by 'flux'.*created_at"):
        await client.images.page(sort="flux")
    with pytest.raises(ValidationError, match=r"unknown filter.*colour.*filters here: type"):
        await client.images.page({"colour": "red"})
    with pytest.raises(ValidationError, match="one page at a time"):
        await client.images.page(after=Cursor(1.0, 1), last=True)
    with pytest.raises(ValidationError, match="size"):
        await client.images.page(size=0)
    with pytest.raises(ValidationError, match="size"):
        await client.images.page(size=1_001)
    with pytest.raises(ValidationError, match="number"):
        await client.images.page(number=2**62)  # (number - 1) * size would not fit a database integer
    assert len(await client.images.page(number=2**40, count=False)) == 0
    with pytest.raises(ValidationError, match="Cursor"):
        await client.images.page(after={"value": 1, "key": 1})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="these are MSFilters, not ImageFilters"):
        await client.images.page(ms.MSFilters(stage="imaged"))
    # The filters mean what they mean in list(): an image type nobody has is a typo in both.
    with pytest.raises(ValidationError, match="unknown type 'pbcorr'"):
        await client.images.page({"type": "pbcorr"})
    with pytest.raises(ValidationError, match="unknown type 'pbcorr'"):
        await client.images.list(type="pbcorr")
    with pytest.raises(ValidationError, match="at most 1,000"):
        await client.images.page({"search": "x" * 1_001})


async def test_filters_objects_and_dicts_page_alike(client: AsyncClient) -> None:
    as_dict = await client.ms.page({"stage": "imaged"}, size=20)
    as_object = await client.ms.page(ms.MSFilters(stage="imaged"), size=20)
    pd.testing.assert_frame_equal(as_dict.rows, as_object.rows)
    assert set(as_dict.rows["stage"]) == {"imaged"}
    assert "more: True" in repr(as_dict) and "<table" in as_dict._repr_html_()


async def test_search_ignores_case_and_takes_wildcards_literally(client: AsyncClient) -> None:
    everything = await client.images.list()
    upper = await client.images.list(search="MOSAIC_")
    assert len(upper) == (everything["path"].str.lower().str.contains("mosaic_", regex=False)).sum() > 0
    assert (await client.images.list(search="%")).empty
