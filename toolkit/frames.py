"""Shaping rows and Arrow tables into DataFrames with the toolkit's dtypes (pure functions, no I/O).

Every frame the toolkit returns goes through :func:`shape`, so a column has the same dtype whichever path
(Arrow or records) and whichever database produced it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .schema import Kind

# Microseconds: what a Python datetime holds, so records convert without loss.
TIME_DTYPE = "datetime64[us, UTC]"
_DTYPES: dict[Kind, Any] = {
    "int": "Int64",
    "real": "float64",
    "text": "str",
    "json": "str",
    "bool": "boolean",
    "time": TIME_DTYPE,
}


def dtype_for(kind: Kind) -> Any:
    return _DTYPES[kind]


def _numeric(series: pd.Series) -> pd.Series:
    # Real databases hold the odd string in a numeric column; such a value becomes NA rather than
    # turning the whole column into objects.
    if series.dtype == object or isinstance(series.dtype, pd.StringDtype):
        return pd.to_numeric(series, errors="coerce")
    return series


def unix_to_utc(series: pd.Series) -> pd.Series:
    """Unix seconds (float or int) -> timezone-aware UTC datetimes; NA stays NaT."""
    if str(series.dtype) == TIME_DTYPE:
        return series
    values = _numeric(series).astype("float64")
    return pd.to_datetime(values, unit="s", utc=True).astype(TIME_DTYPE)


def convert(series: pd.Series, kind: Kind) -> pd.Series:
    if kind == "time":
        return unix_to_utc(series)
    if kind == "real":
        return _numeric(series).astype("float64")
    if kind == "int":
        values = _numeric(series)
        if values.dtype.kind == "f":
            # Int64 refuses fractions; a fractional value in an integer column is data damage -> NA.
            values = values.where(values.isna() | (values == np.floor(values)))
        return values.astype("Int64")
    if kind == "bool":
        return (_numeric(series).astype("Float64") != 0).astype("boolean")
    return series.astype("str")


def shape(frame: pd.DataFrame, kinds: Mapping[str, Kind]) -> pd.DataFrame:
    """Give each known column its dtype; unknown columns pass through unchanged."""
    for name in frame.columns:
        kind = kinds.get(name)
        if kind is not None and frame[name].dtype != dtype_for(kind):
            frame[name] = convert(frame[name], kind)
    return frame


def from_rows(rows: Sequence[Sequence[Any]], columns: Sequence[str], kinds: Mapping[str, Kind]) -> pd.DataFrame:
    """Rows (tuples) from a DB-API cursor -> a shaped frame; an empty result keeps its columns and dtypes."""
    if rows:
        frame = pd.DataFrame.from_records(list(rows), columns=list(columns))
    else:
        frame = pd.DataFrame({name: pd.Series([], dtype="object") for name in columns})
    return shape(frame, kinds)


def time_kinds_by_name(columns: Sequence[str]) -> dict[str, Kind]:
    """For ad-hoc SQL: columns named like the pipeline's unix-time columns become UTC datetimes."""
    return {name: "time" for name in columns if name.endswith("_at") or name == "timestamp"}


def plain(value: Any) -> Any:
    """A pandas/numpy scalar -> a plain Python value (NA -> None, Timestamp -> datetime)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return plain(value.item())
    return value


def first_row(frame: pd.DataFrame) -> dict[str, Any]:
    """The first row of a shaped frame as plain Python values (for building records)."""
    return {name: plain(value) for name, value in frame.iloc[0].items()}


def rows_as_dicts(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{name: plain(v) for name, v in zip(frame.columns, row, strict=True)} for row in frame.itertuples(False)]
