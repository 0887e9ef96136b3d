"""Checked by mypy --strict in `make lint` (never run): the blocking client's calls have the async ones' types."""

from __future__ import annotations

from collections.abc import Iterator
from typing import assert_type

import pandas as pd

from toolkit import Client, Image, LogLines, Stats


def calls(client: Client) -> None:
    assert_type(client.images.list(), pd.DataFrame)
    assert_type(client.images.get(1), Image)
    assert_type(client.logs.tail("job-1"), LogLines)
    assert_type(client.logs.follow("job-1"), Iterator[str])
    assert_type(client.stats(), Stats)
    assert_type(client.sql("SELECT 1"), pd.DataFrame)
