"""Unix seconds and Modified Julian Dates: the pipeline stores both (``created_at`` vs ``mid_mjd``)."""

from __future__ import annotations

from typing import Any, TypeVar, overload

MJD_UNIX_EPOCH = 40587.0  # 1970-01-01T00:00:00 UTC
SECONDS_PER_DAY = 86400.0

# Works on floats, numpy arrays and pandas Series alike (plain arithmetic).
Numbers = TypeVar("Numbers")


@overload
def unix_to_mjd(seconds: None) -> None: ...
@overload
def unix_to_mjd(seconds: Numbers) -> Numbers: ...
def unix_to_mjd(seconds: Any) -> Any:
    return None if seconds is None else seconds / SECONDS_PER_DAY + MJD_UNIX_EPOCH


@overload
def mjd_to_unix(mjd: None) -> None: ...
@overload
def mjd_to_unix(mjd: Numbers) -> Numbers: ...
def mjd_to_unix(mjd: Any) -> Any:
    return None if mjd is None else (mjd - MJD_UNIX_EPOCH) * SECONDS_PER_DAY
