"""Checking and normalising what users pass in (pure functions; every failure is a ValidationError)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import pandas as pd

from .errors import ValidationError
from .mjd import unix_to_mjd

TimeLike = datetime | date | str | pd.Timestamp


class HasMJD(Protocol):
    """An astropy ``Time`` as the toolkit reads it (astropy is not imported to check for one)."""

    @property
    def mjd(self) -> Any: ...


# A moment for MJD bounds: an MJD number, a TimeLike, or an astropy Time.
EpochLike = float | TimeLike | HasMJD
# Integers the databases store (SQLite and PostgreSQL bigint): anything larger cannot name a row.
MAX_INT64 = 2**63 - 1
# Dates are pandas nanosecond timestamps: this is the range they can hold.
EARLIEST = pd.Timestamp.min.ceil("s").tz_localize("UTC")
LATEST = pd.Timestamp.max.floor("s").tz_localize("UTC")


def to_utc_timestamp(value: TimeLike, name: str) -> pd.Timestamp:
    """A datetime, date or ISO-8601 string -> a UTC timestamp. Naive values are taken as UTC."""
    if isinstance(value, bool) or not isinstance(value, (datetime, date, str, pd.Timestamp)):
        raise ValidationError(
            f"{name} must be a datetime, a date or an ISO-8601 string such as '2025-10-05T12:00', "
            f"not {type(value).__name__}"
        )
    if isinstance(value, str) and len(value) > 64:
        raise ValidationError(f"{name}: {value[:40]!r}... is too long to be a date/time")
    try:
        stamp = pd.Timestamp(value)
        if pd.isna(stamp):
            raise ValidationError(f"{name}: {value!r} is not a date/time")
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        if not EARLIEST <= stamp <= LATEST:
            raise OverflowError
        return stamp.as_unit("ns")
    except (OverflowError, pd.errors.OutOfBoundsDatetime) as exc:
        raise ValidationError(
            f"{name}: {value!r} is outside the supported range of dates, {EARLIEST:%Y-%m-%d} to "
            f"{LATEST:%Y-%m-%d} (pandas' datetime range)"
        ) from exc
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            f"{name}: cannot read {value!r} as a date/time (use ISO-8601, e.g. '2025-10-05')"
        ) from exc


def as_of_time(value: TimeLike | None) -> pd.Timestamp:
    """The moment ages are measured to: ``value`` (an ``as_of`` argument) or now, in UTC."""
    return pd.Timestamp.now(tz="UTC") if value is None else to_utc_timestamp(value, "as_of")


def to_unix(value: TimeLike | None, name: str) -> float | None:
    if value is None:
        return None
    return to_utc_timestamp(value, name).value / 1e9


def to_mjd(value: TimeLike | None, name: str) -> float | None:
    return unix_to_mjd(to_unix(value, name))


def epoch_mjd(value: Any, name: str) -> float | None:
    """A moment as an MJD: a number is an MJD already; a datetime, date, pandas Timestamp or ISO-8601 string
    is converted (naive values are UTC); an astropy ``Time`` gives its ``.mjd``."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValidationError(f"{name} must be an MJD, a datetime, an ISO-8601 string or an astropy Time")
    if isinstance(value, int | float):
        return check_number(value, name)
    if not isinstance(value, datetime | date | str | pd.Timestamp) and hasattr(value, "mjd"):
        # astropy Time, read by duck type so astropy is imported only by callers who use it
        if getattr(value, "isscalar", True) is not True:
            raise ValidationError(f"{name} must be one moment, not an array of {len(value)} times")
        return check_number(float(value.mjd), name)
    return to_mjd(value, name)


def check_epoch_range(
    start: Any, end: Any, names: tuple[str, str] = ("start", "end")
) -> tuple[float | None, float | None]:
    """``start``/``end`` (anything :func:`epoch_mjd` reads) -> MJDs, refusing a range that ends before it starts."""
    first, last = epoch_mjd(start, names[0]), epoch_mjd(end, names[1])
    if first is not None and last is not None and last < first:
        raise ValidationError(f"{names[1]} ({end}) is before {names[0]} ({start})")
    return first, last


def check_time_range(since: TimeLike | None, until: TimeLike | None) -> tuple[float | None, float | None]:
    """``since``/``until`` -> unix seconds, refusing a range that ends before it starts."""
    start, end = to_unix(since, "since"), to_unix(until, "until")
    if start is not None and end is not None and end < start:
        raise ValidationError(f"until ({until}) is before since ({since})")
    return start, end


def digits_as_id(value: int | str) -> int | str:
    """A string of ASCII digits names a row by its integer id (``"123"`` is 123, as the pipeline's API read
    ``/images/123``); anything else is returned as it is. Past 19 digits no database integer can hold it:
    2**63 stands in, and the 64-bit check where it is used says so."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value) if len(value) <= 19 else 2**63
    return value


def check_count(value: Any, name: str, *, low: int = 0, high: int = MAX_INT64) -> int:
    """A whole number in ``[low, high]`` (by default within what a 64-bit database integer holds)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{name} must be a whole number from {low:,} to {high:,}, got {value!r}")
    return value


def check_limit(limit: int | None, offset: int) -> tuple[int | None, int]:
    if limit is not None:
        check_count(limit, "limit")
    return limit, check_count(offset, "offset")


def is_finite_number(value: Any) -> bool:
    """A real int or float (not a bool) that is finite as a float (10**400 is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_names(values: Any, name: str) -> list[str]:
    """A list (or other iterable, not a single string) of non-empty strings."""
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise ValidationError(f"{name} must be a list of non-empty strings, got {values!r}")
    items = list(values)
    bad = [v for v in items if not isinstance(v, str) or not v]
    if bad:
        raise ValidationError(f"{name} must hold non-empty strings only; got {bad[0]!r}")
    return items


def check_number(
    value: Any, name: str, *, low: float | None = None, high: float | None = None
) -> float | None:
    if value is None:
        return None
    if not is_finite_number(value):
        raise ValidationError(f"{name} must be a finite number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValidationError(f"{name} must lie in [{low}, {high}], got {value}")
    return float(value)


def check_mjd_range(start_mjd: Any, end_mjd: Any) -> tuple[float | None, float | None]:
    start, end = check_number(start_mjd, "start_mjd"), check_number(end_mjd, "end_mjd")
    if start is not None and end is not None and end < start:
        raise ValidationError(f"end_mjd ({end}) is before start_mjd ({start})")
    return start, end


def check_text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name} must be a non-empty string, got {value!r}")
    return value


def check_choices(values: str | Iterable[str] | None, name: str) -> list[str] | None:
    """A filter value or list of values -> a list (None when no filter)."""
    if values is None:
        return None
    if not isinstance(values, str | Iterable) or isinstance(values, bytes | Mapping):
        raise ValidationError(f"{name} must be a non-empty string or a list of them, got {values!r}")
    items = [values] if isinstance(values, str) else list(values)
    if not items or not all(isinstance(v, str) and v for v in items):
        raise ValidationError(f"{name} must be a non-empty string or a list of them, got {values!r}")
    return items


def check_params(params: Sequence[Any]) -> None:
    """Values bound into SQL: integers must fit the databases' 64-bit integers (larger ones name nothing)."""
    for value in params:
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and not -MAX_INT64 - 1 <= value <= MAX_INT64
        ):
            raise ValidationError(f"{value} is outside the 64-bit integer range the databases store")


# The longest duration any argument may name (ages, timeouts): far beyond any use, small enough to be finite.
MAX_DURATION = timedelta(days=36_600)
DurationLike = timedelta | float | int | str


def to_duration(value: DurationLike, name: str) -> timedelta:
    """The one duration parser: a ``timedelta``, a bare number of **seconds**, or text such as "90s",
    "90min", "6h", "2d" or "2 days". Positive and finite (at most 100 years)."""
    what = f"{name} must be a timedelta, a number of seconds or text such as '90min', '6h' or '2d'"
    if isinstance(value, bool):
        raise ValidationError(f"{what}, not {value!r}")
    try:
        if isinstance(value, timedelta):
            duration = value
        elif isinstance(value, int | float):
            if not is_finite_number(value):
                raise ValueError
            duration = timedelta(seconds=float(value))
        elif isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d*)?\s*", value):
            # Text that is a plain number is seconds too (the command line passes text); pandas would read
            # it as nanoseconds.
            duration = timedelta(seconds=float(value))
        elif isinstance(value, str) and len(value) <= 64:
            # pandas reads "2d" and "2 days"; its lower-case unit "d" is deprecated, so say it as "D".
            parsed = pd.Timedelta(re.sub(r"(?<=\d)\s*d\b", "D", value.strip()))
            if pd.isna(parsed):
                raise ValueError
            duration = parsed.to_pytimedelta()
        else:
            raise ValueError
    except (ValueError, TypeError, OverflowError):
        raise ValidationError(f"{what}, not {value!r}") from None
    if not timedelta(0) < duration <= MAX_DURATION:
        raise ValidationError(f"{name} must be a positive duration of at most 100 years, got {value!r}")
    return duration
