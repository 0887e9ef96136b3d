"""Shaping query results into DataFrames with the toolkit's dtypes (pure functions, no I/O).

Every frame the toolkit returns is built here, so a column has the same dtype whichever path (Arrow or
rows) and whichever database produced it. The conversions run in Arrow, column by column: Arrow compute
releases the GIL, and converting one column at a time keeps each GIL hold to a few milliseconds, so a
worker thread shaping a million rows does not stall the event loop.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .schema import Kind

# Microseconds: what a Python datetime holds, so records convert without loss.
TIME_DTYPE = "datetime64[us, UTC]"
_ARROW_TIME = pa.timestamp("us", tz="UTC")
_DTYPES: dict[Kind, Any] = {
    "int": "Int64",
    "real": "float64",
    "text": "str",
    "json": "str",
    "bool": "boolean",
    "time": TIME_DTYPE,
}
_INT64 = pd.Int64Dtype()
_BOOLEAN = pd.BooleanDtype()
_STR: Any = pd.api.types.pandas_dtype("str")
_STRING_ARRAY: Any = pd.arrays.ArrowStringArray  # (pandas-stubs lacks its dtype argument)
_TIME: Any = pd.api.types.pandas_dtype(TIME_DTYPE)
# Strings are mapped explicitly: with a types_mapper that returns None for them, pyarrow would build them
# through Python objects (slow, GIL held); mapped, pandas wraps the Arrow buffers without a copy.
_PANDAS_TYPES = {pa.int64(): _INT64, pa.bool_(): _BOOLEAN, pa.large_string(): _STR, pa.string(): _STR}
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)
# Microseconds beyond this are outside datetime64[us] (int64): such a stored time is read as missing.
_MAX_MICROS = float(2**63 - 2**10)
# Above this many rows a frame is converted column by column, so no single GIL hold stalls the event loop.
SMALL_TABLE_ROWS = 20_000


def seconds_to_time(seconds: np.ndarray) -> Any:
    """Unix seconds -> a UTC microsecond ``DatetimeArray``, rounded to the nearest microsecond as the Arrow
    path rounds (truncating instead made the two paths differ by 1 us on stored values like
    1796038022.1358109). A value no datetime can hold (inf, 1e300) is damaged data: NaT, as on that path."""
    micros = np.round(seconds * 1e6)
    with np.errstate(invalid="ignore"):
        missing = ~(np.abs(micros) < _MAX_MICROS)
    # Straight to datetime64[us] (read as UTC): a fifth of pd.to_datetime's cost, paid by every light curve.
    if missing.any():
        micros[missing] = 0
        ticks = micros.astype("int64")
        ticks[missing] = np.iinfo("int64").min  # NaT
    else:
        ticks = micros.astype("int64")
    return _time_array(ticks.view("datetime64[us]"))


# pandas' constructor of a DatetimeArray from finished datetime64[us] ticks: ~1 us against ~26 us for
# pd.array (which re-validates them), a fifth of a light curve's shaping. Private, hence the public
# fallback (tests compare the two).
_SIMPLE_NEW: Any = getattr(_TIME.construct_array_type(), "_simple_new", None)


def _time_array(ticks: np.ndarray, *, fast: bool = True) -> Any:
    if fast and _SIMPLE_NEW is not None:
        with contextlib.suppress(TypeError, ValueError):
            return _SIMPLE_NEW(ticks, dtype=_TIME)
    return pd.array(ticks, dtype=_TIME)


def dtype_for(kind: Kind) -> Any:
    return _DTYPES[kind]


# ------------------------------------------------------------------------------------------ Arrow path
def _is_number(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t))


def _arrow_cast(col: Any, kind: Kind) -> Any:
    """Cast one Arrow column to the kind's Arrow type; raises an Arrow error where pandas must decide."""
    t = col.type
    if kind == "time":
        if pa.types.is_timestamp(t):
            return col.cast(_ARROW_TIME)
        if not _is_number(t):
            raise pa.ArrowInvalid("not numeric")
        micros = pc.round(pc.multiply(col.cast(pa.float64()), 1e6))
        micros = pc.if_else(pc.less(pc.abs(micros), _MAX_MICROS), micros, None)  # no wrap-around: null
        return micros.cast(pa.int64(), safe=False).cast(_ARROW_TIME)
    if kind == "real":
        return col.cast(pa.float64())
    if kind == "int":
        if not (pa.types.is_integer(t) or pa.types.is_null(t)):
            raise pa.ArrowInvalid("not integer")
        return col.cast(pa.int64())
    if kind == "bool":
        if not (_is_number(t) or pa.types.is_boolean(t)):
            raise pa.ArrowInvalid("not numeric")
        return pc.not_equal(col.cast(pa.int64()), 0)
    # pandas' "str" dtype stores large_string: casting here (GIL released) makes to_pandas zero-copy,
    # where converting a plain string column holds the GIL ~100 ms per million rows.
    return col.cast(pa.large_string())


def arrow_column(col: Any, kind: Kind | None, *, own: bool = False) -> pd.Series:
    """One Arrow column -> a shaped series. ``own``: a string column gets buffers of its own.

    A read from the SQLite reader process is a few record batches, each one buffer that every column of the
    batch points into; a string column wrapped without a copy keeps those whole buffers alive, numbers and
    all, after the numeric columns were copied out of them (a table of several batches is always
    copied). At 1M rows of photometry that held ~200 MiB more than the frame's own 243 MiB."""
    if kind is None:
        if pa.types.is_string(col.type):
            col = col.cast(pa.large_string())
        plain_series: pd.Series = col.to_pandas()
        return plain_series
    try:
        converted = _arrow_cast(col, kind)
    except _ARROW_ERRORS:
        return convert(col.to_pandas(), kind)
    if own and pa.types.is_large_string(converted.type):
        converted = pa.chunked_array([pa.concat_arrays(converted.chunks)], type=converted.type)
    series: pd.Series = converted.to_pandas(types_mapper=_PANDAS_TYPES.get)
    return series


def _cast_or_none(col: Any, kind: Kind | None) -> Any:
    if kind is None:
        return col.cast(pa.large_string()) if pa.types.is_string(col.type) else col
    try:
        return _arrow_cast(col, kind)
    except _ARROW_ERRORS:
        return None


def arrow_to_frame(table: pa.Table, kinds: Mapping[str, Kind]) -> pd.DataFrame:
    """An Arrow table -> a shaped frame.

    Large tables go column by column (each GIL hold stays short; no block consolidation, no copies); small
    ones in one ``to_pandas`` call, where per-column pandas overhead would dominate.
    """
    names = table.column_names
    if len(set(names)) != len(names):
        return shape(table.to_pandas(), kinds)
    if table.num_rows > SMALL_TABLE_ROWS:
        own = table.column(0).num_chunks > 1 if names else False
        data = {name: arrow_column(table.column(name), kinds.get(name), own=own) for name in names}
        return pd.DataFrame(data, copy=False)
    casted = [_cast_or_none(table.column(name), kinds.get(name)) for name in names]
    if any(c is None for c in casted):
        return shape(table.to_pandas(), kinds)
    frame: pd.DataFrame = pa.Table.from_arrays(casted, names=names).to_pandas(types_mapper=_PANDAS_TYPES.get)
    return frame


def tables_to_frame(
    tables: list[Any],
    kinds: Mapping[str, Kind],
    post: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """The Arrow parts of one query (read at once, in order) -> one shaped frame, as if read in one piece.

    The parts are joined as Arrow (no copy; a column typed in one part and all NULL in another is promoted)
    and shaped once, so the peak is the one of a single read, not the parts' frames plus their
    concatenation. ``tables`` is emptied, so the parts can be freed before ``post`` runs. Parts whose types
    cannot be joined (SQLite stores what it is given) are shaped one by one and concatenated."""
    try:
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
    except _ARROW_ERRORS:
        pieces = [arrow_to_frame(t, kinds) for t in tables]
        tables.clear()
        frame = pd.concat(pieces, ignore_index=True)
    else:
        tables.clear()
        frame = arrow_to_frame(table, kinds)
        del table  # what the frame did not take over is freed before ``post`` builds the answer
    return frame if post is None else post(frame)


def _array_from_values(values: Sequence[Any], kind: Kind | None) -> Any:
    """A column of Python values -> the kind's array, or raise TypeError/ValueError for pandas to sort out."""
    if kind == "real":
        return np.array(values, dtype="float64")  # None -> NaN; a string raises
    if kind == "time":
        try:
            seconds = np.array(values, dtype="float64")
        except TypeError:
            if any(isinstance(v, datetime) for v in values):  # a database that stores timestamps, not seconds
                return pd.to_datetime(list(values), utc=True).astype(_TIME).array
            raise
        return seconds_to_time(seconds)
    if kind == "int":
        numbers = np.array(values)
        if numbers.dtype.kind == "i":  # whole numbers, none missing: a third of pd.array's cost
            return pd.arrays.IntegerArray(numbers.astype("int64"), np.zeros(len(numbers), dtype=bool))
        return pd.array(values, dtype=_INT64)  # a string or a fraction raises
    if kind == "bool":
        try:  # the usual 0/1/NULL, built without a Python-level loop
            numbers = np.array(values, dtype="float64")
            return pd.arrays.BooleanArray(numbers != 0, np.isnan(numbers))
        except (TypeError, ValueError):
            return pd.array([None if v is None else bool(v) for v in values], dtype=_BOOLEAN)
    if kind in ("text", "json"):
        try:  # Arrow builds a string column in C; pandas wraps it without a copy (half pd.array's cost)
            return _STRING_ARRAY(pa.array(values, type=pa.large_string()), dtype=_STR)
        except _ARROW_ERRORS:  # a number among the strings: pandas formats it
            return pd.array(values, dtype=_STR)
    return pd.array(values) if values else pd.array([], dtype=object)


def _missing_values(kind: Kind | None, n: int) -> Any:
    """A column of ``n`` missing values of the kind's dtype (a column the site's schema lacks)."""
    if kind == "real":
        return np.full(n, np.nan)
    if kind in ("text", "json"):
        return _STRING_ARRAY(pa.nulls(n, pa.large_string()), dtype=_STR)
    if kind is None:
        return pd.array([None] * n, dtype=object)
    return pd.array([None] * n, dtype=dtype_for(kind))


@functools.lru_cache(maxsize=256)
def _labels(columns: tuple[str, ...]) -> pd.Index:
    # Building the column index infers a string dtype for the names: ~120 us of a 100-row light curve's
    # ~600 us. Each frame gets its own copy (the index's name is settable); the copy shares the data.
    return pd.Index(columns)


# pandas' constructor from finished column arrays (what its own from_records uses): it skips re-checking
# every column, ~80 us against ~230 us for the public dict constructor on 22 columns. Private, hence the
# public fallback (equality of the two is tested).
_FROM_ARRAYS: Any = getattr(pd.DataFrame, "_from_arrays", None)


def frame_of(arrays: Sequence[Any], columns: Sequence[str], rows: int, *, fast: bool = True) -> pd.DataFrame:
    """A frame from finished, equally long 1-D column arrays, with a ``RangeIndex``."""
    index = pd.RangeIndex(rows)
    if fast and _FROM_ARRAYS is not None:
        with contextlib.suppress(TypeError):
            frame: pd.DataFrame = _FROM_ARRAYS(
                list(arrays), _labels(tuple(columns)).copy(), index, verify_integrity=False
            )
            return frame
    return pd.DataFrame(dict(zip(columns, arrays, strict=True)), index=index, copy=False)


def from_rows(
    rows: Sequence[Sequence[Any]],
    columns: Sequence[str],
    kinds: Mapping[str, Kind],
    absent: Collection[str] = (),
) -> pd.DataFrame:
    """Rows (tuples) from a DB-API cursor -> a shaped frame; an empty result keeps its columns and dtypes.

    ``absent`` names columns of ``columns`` the rows do not hold (the site's schema lacks them): they come
    out all missing, in their place, without the query selecting a NULL for every row.

    For the small results this path serves, building each array straight from the Python values beats a
    detour through Arrow (pandas' per-column overhead dominates there).
    """
    present = [c for c in columns if c not in absent]
    if len(set(columns)) == len(columns):
        try:
            values = list(zip(*rows, strict=True)) if rows else [() for _ in present]
            if len(values) == len(present):
                held = iter(values)
                arrays = [
                    _missing_values(kinds.get(name), len(rows))
                    if name in absent
                    else _array_from_values(next(held), kinds.get(name))
                    for name in columns
                ]
                return frame_of(arrays, columns, len(rows))
        except (TypeError, ValueError, OverflowError):
            pass  # a column of mixed types (a string among numbers): pandas coerces what it can
    frame = pd.DataFrame.from_records([tuple(row) for row in rows], columns=present)
    if absent:
        for name in absent:
            frame[name] = None
        frame = frame[list(columns)]
    return shape(frame, kinds)


# ----------------------------------------------------------------------------------------- pandas path
def _numeric(series: pd.Series) -> pd.Series:
    # Real databases hold the odd string in a numeric column; such a value becomes NA rather than
    # turning the whole column into objects.
    if series.dtype == object or isinstance(series.dtype, pd.StringDtype):
        return pd.to_numeric(series, errors="coerce")
    return series


def convert(series: pd.Series, kind: Kind) -> pd.Series:
    """One pandas column -> the kind's dtype (the slow, forgiving path for columns Arrow cannot cast)."""
    if kind == "time":
        if str(series.dtype) == TIME_DTYPE:
            return series
        times = pd.Series(
            seconds_to_time(_numeric(series).to_numpy(dtype="float64", na_value=np.nan)), index=series.index
        )
        return times
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
    text: pd.Series = series.astype(_STR)
    return text


def shape(frame: pd.DataFrame, kinds: Mapping[str, Kind]) -> pd.DataFrame:
    """Give each known column of a pandas frame its dtype; unknown columns pass through unchanged."""
    for position, name in enumerate(frame.columns):
        kind = kinds.get(name)
        column = frame.iloc[:, position]
        if kind is not None and column.dtype != dtype_for(kind):
            converted: Any = convert(column, kind)
            frame.isetitem(position, converted)
    return frame


def time_kinds_by_name(columns: Sequence[str]) -> dict[str, Kind]:
    """For ad-hoc SQL: columns named like the pipeline's unix-time columns become UTC datetimes."""
    return {name: "time" for name in columns if name.endswith("_at") or name == "timestamp"}


# ------------------------------------------------------------------------------------------- records
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
    return {str(name): plain(value) for name, value in frame.iloc[0].items()}


def rows_as_dicts(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {name: plain(v) for name, v in zip(frame.columns, row, strict=True)}
        for row in frame.itertuples(False)
    ]
