"""Hostile arguments for every public method of every area: the only failures are the toolkit's own errors.

Hypothesis draws, for each method, a value for every required parameter and for a random subset of the
optional ones, from a pool of wrong types, extremes, unicode, NUL, huge integers, NaN and infinity, dates at
and beyond pandas' range, and very long strings. A call may succeed or raise a ``ToolkitError``; anything
else (a raw ``TypeError``, ``OverflowError``, a driver error) fails the test. The pipeline's files are
hashed before and after.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit import AsyncClient, ToolkitError
from toolkit.client import area_names
from toolkit.demo import DemoSite

from .conftest import digests

# Calls that never end by design (a log follow): they are checked by taking at most one step.
ENDLESS = {("logs", "follow")}

HOSTILE: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 2**70, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e-308, 5e-324]),
    st.text(max_size=40),
    st.sampled_from(
        ["", " ", "\x00", "a\x00b", "ü∂ƒ🛰", "../../etc/passwd", "'; DROP TABLE images; --", "%", "_"]
    ),
    st.sampled_from(["x" * 100_000, "(" * 5000, "[" * 3000 + "a"]),
    st.sampled_from(
        [
            "0001-01-01",
            "9999-12-31",
            "1677-09-21",
            "2262-04-12",
            "2025-10-05",
            "2025-13-45",
            "yesterday",
            "6h",
            "90min",
        ]
    ),
    st.sampled_from(
        [
            datetime(1, 1, 1),
            datetime(9999, 12, 31, tzinfo=UTC),
            date(1600, 1, 1),
            pd.Timestamp("1677-09-22"),
            timedelta(days=-1),
            timedelta(days=10**6),
        ]
    ),
    st.lists(st.one_of(st.text(max_size=5), st.integers(), st.none()), max_size=4),
    st.sampled_from([b"bytes", {"a": 1}, object(), [[]], (1, "a"), {1, 2}]),
)

FILTER_NAMES = st.sampled_from(
    ["type", "status", "stage", "since", "until", "search", "tag", "ms_path", "nope"]
)


def _methods(client: AsyncClient) -> list[tuple[str, str, Callable[..., Any]]]:
    found = []
    for area in area_names(client):
        for name, method in inspect.getmembers(getattr(client, area)):
            if name.startswith("_") or name == "aclose":
                continue
            if inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method):
                found.append((area, name, method))
    found += [
        ("client", "sql", client.sql),
        ("client", "provenance", client.provenance),
        ("client", "stats", client.stats),
    ]
    return found


async def _call(
    area: str, name: str, method: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]
) -> None:
    if (area, name) in ENDLESS:
        stream = method(*args, **kwargs)
        try:
            await asyncio.wait_for(anext(stream), 0.3)
        except TimeoutError:
            pass  # waiting for a line that never comes: bounded by us, not by the call
        finally:
            await stream.aclose()
        return
    result = method(*args, **kwargs)
    if inspect.isawaitable(result):
        await result


@pytest.fixture(scope="module")
def abuse_loop() -> Any:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.filterwarnings("error::RuntimeWarning")  # an overflow would mean an inf in a result
def test_every_public_method_fails_only_with_toolkit_errors(
    site: DemoSite, abuse_loop: asyncio.AbstractEventLoop, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    before = digests(site)
    # The job queue is abused on a real Redis where this machine has one (CI does).
    try:
        redis_url: str | None = request.getfixturevalue("redis_server")
    except pytest.skip.Exception:
        redis_url = None
    # Hostile writes go to a notes database of this test's own (the demo's stays as the other tests expect).
    client = AsyncClient(
        **{**site.settings_kwargs(), "notes_db": tmp_path / "notes.sqlite"},
        query_timeout=2,
        redis_url=redis_url,
    )
    abuse_loop.run_until_complete(client.open())
    methods = _methods(client)
    assert len(methods) >= 35, [f"{a}.{n}" for a, n, _ in methods]
    tried: dict[str, int] = {}

    @settings(
        max_examples=40
        * len(methods),  # enough that every method is drawn (derandomized: the same every run)
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=True,
    )
    @given(data=st.data())
    def one_call(data: st.DataObject) -> None:
        area, name, method = data.draw(st.sampled_from(methods), label="method")
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for parameter in inspect.signature(method).parameters.values():
            if parameter.kind == parameter.VAR_KEYWORD:  # an export's filters: any names, any values
                kwargs.update(data.draw(st.dictionaries(FILTER_NAMES, HOSTILE, max_size=2), label="filters"))
                continue
            if parameter.kind == parameter.VAR_POSITIONAL:
                continue
            required = parameter.default is parameter.empty
            if not required and not data.draw(st.booleans(), label=f"set {parameter.name}"):
                continue
            # A file the call may really write (in this test's folder), so what comes after the path is reached.
            writable = st.sampled_from([str(tmp_path / "abuse.csv"), str(tmp_path / "abuse.parquet")])
            value = data.draw(
                st.one_of(HOSTILE, writable) if parameter.name == "path" else HOSTILE, label=parameter.name
            )
            if parameter.kind == parameter.POSITIONAL_ONLY or (
                required and parameter.kind != parameter.KEYWORD_ONLY
            ):
                args.append(value)
            else:
                kwargs[parameter.name] = value
        tried[f"{area}.{name}"] = tried.get(f"{area}.{name}", 0) + 1
        with contextlib.suppress(ToolkitError):
            abuse_loop.run_until_complete(_call(area, name, method, args, kwargs))

    try:
        one_call()
    finally:
        abuse_loop.run_until_complete(client.aclose())
    assert set(tried) == {f"{a}.{n}" for a, n, _ in methods}, "every method was tried"
    assert digests(site) == before
