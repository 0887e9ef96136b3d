"""An answer that outgrows its share of the memory budget, kept on disk and mapped back in.

Parts of one answer (a science call's groups) arrive one after another. While they are small they stay in
memory and are joined at the end. Once they pass ``limit`` bytes, every column goes to an unnamed temporary
file (``tempfile.TemporaryFile``: no name on disk, so nothing is left behind, even after a crash), and the
answer comes back as a frame whose columns are those files mapped copy-on-write. Pages are read from disk when
touched and are page cache the kernel can drop, not the process's own memory; an edit to the frame stays
private to it. This is how a two-epoch answer of hundreds of millions of pairs stays within the budget.

Only plain numpy columns and Arrow-backed strings without missing values can go to disk; an answer with
any other column stays in memory, as before. The files go to the system's temporary folder (``TMPDIR``): on a
machine where that is a RAM disk (tmpfs), point ``TMPDIR`` at a real disk.
"""

from __future__ import annotations

import mmap
import tempfile
from typing import IO, Any

import numpy as np
import pandas as pd

from .errors import FileNotAccessibleError


def _spillable(dtype: Any) -> bool:
    if isinstance(dtype, np.dtype):
        return dtype.kind in "biuf"  # numbers and booleans: their bytes are the array
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"


def _spillable_part(part: pd.DataFrame) -> bool:
    return all(
        _spillable(dtype) and (isinstance(dtype, np.dtype) or not part[name].isna().any())
        for name, dtype in part.dtypes.items()
    )


class _Column:
    """One column's bytes in unnamed files: the values, and for strings the offsets into them."""

    def __init__(self, dtype: Any, directory: str | None) -> None:
        self.dtype = dtype
        self.is_string = not isinstance(dtype, np.dtype)
        # The files outlive this call: close() or the map at the end closes them, whichever comes first.
        self.values: IO[bytes] = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
        self.offsets: IO[bytes] | None = (
            tempfile.TemporaryFile(dir=directory) if self.is_string else None  # noqa: SIM115
        )
        self.text_bytes = 0  # string bytes written so far: the next part's offsets start there
        if self.offsets is not None:
            self.offsets.write(np.zeros(1, dtype=np.int64).data)

    def write(self, column: pd.Series) -> None:
        if not self.is_string:
            self.values.write(np.ascontiguousarray(column.to_numpy(dtype=self.dtype)).data)
            return
        import pyarrow as pa

        assert self.offsets is not None
        strings = pa.array(column.array)
        chunks = strings.chunks if isinstance(strings, pa.ChunkedArray) else [strings]
        for chunk in chunks:
            chunk = chunk.cast(pa.large_string())
            if not len(chunk):
                continue
            if chunk.null_count:  # the offsets alone cannot say missing: such a column is never spilled
                raise ValueError("a missing value in a spilled string column")
            _, offsets_buffer, data_buffer = chunk.buffers()
            offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[
                chunk.offset : chunk.offset + len(chunk) + 1
            ]
            first, last = int(offsets[0]), int(offsets[-1])
            self.values.write(memoryview(data_buffer)[first:last])
            self.offsets.write((offsets[1:] - first + self.text_bytes).data)
            self.text_bytes += last - first

    def array(self, rows: int) -> Any:
        """The column as an array over the mapped files (the files are closed; the maps keep them)."""
        values = _mapped(self.values)
        if not self.is_string:
            return np.frombuffer(values, dtype=self.dtype, count=rows) if rows else np.zeros(0, self.dtype)
        import pyarrow as pa

        assert self.offsets is not None
        offsets = _mapped(self.offsets)
        data = pa.py_buffer(values) if self.text_bytes else pa.py_buffer(b"")
        strings = pa.LargeStringArray.from_buffers(rows, pa.py_buffer(offsets), data)
        return pd.array(strings, dtype=self.dtype)

    def close(self) -> None:
        for handle in (self.values, self.offsets):
            if handle is not None:
                handle.close()


def _mapped(handle: IO[bytes]) -> mmap.mmap | bytes:
    handle.flush()
    size = handle.seek(0, 2)
    if not size:
        return b""  # an empty file cannot be mapped
    mapped = mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_COPY)  # the map holds its own descriptor
    handle.close()
    return mapped


class SpillingParts:
    """The parts of one answer, in their final order, joined by :meth:`frame`.

    Parts must have the same columns and dtypes. An empty part's columns may be untyped, so empty parts
    are left out of the join unless every part is empty (then the first one is the answer)."""

    def __init__(self, limit: int, *, directory: str | None = None, what: str = "the answer") -> None:
        self._limit = limit
        self._directory = directory
        self._what = what
        self._held: list[pd.DataFrame] = []
        self._held_bytes = 0
        self._spillable = True  # every part so far can go to the files
        self._first: pd.DataFrame | None = None
        self._columns: list[_Column] | None = None
        self._names: list[str] = []
        self._rows = 0

    @property
    def spilled(self) -> bool:
        return self._columns is not None

    def add(self, part: pd.DataFrame) -> None:
        if self._first is None:
            # The answer when every part is empty: its columns and dtypes only. A copy, not a view: a view
            # of the first part kept its arrays alive after they went to the files (12 MiB at 10M rows).
            self._first = part.iloc[:0].copy()
        if not len(part):
            return
        if self._columns is not None:
            self._write(part)
            return
        self._held.append(part)
        self._held_bytes += int(part.memory_usage(index=False, deep=False).sum())
        self._spillable = self._spillable and _spillable_part(part)  # each part checked once
        if self._held_bytes > self._limit and self._spillable:
            self._spill()

    def frame(self) -> pd.DataFrame:
        """The joined answer; once spilled, over mapped files (built without copying them)."""
        if self._columns is None:
            if len(self._held) == 1:
                return self._held[0]
            if not self._held:
                return self._first if self._first is not None else pd.DataFrame()
            return pd.concat(self._held, ignore_index=True)
        columns, self._columns = self._columns, None
        try:
            arrays = {
                name: column.array(self._rows) for name, column in zip(self._names, columns, strict=True)
            }
        except OSError as exc:
            raise self._error(exc) from exc
        finally:
            for column in columns:
                column.close()
        # copy=False: a frame from a dict of arrays keeps each array as it is (no consolidated copy)
        return pd.DataFrame(arrays, index=pd.RangeIndex(self._rows), copy=False)

    def close(self) -> None:
        """Drops whatever was gathered now (the files disappear with their handles) rather than at garbage
        collection."""
        if self._columns is not None:
            for column in self._columns:
                column.close()
            self._columns = None
        self._held = []

    def _spill(self) -> None:
        first = self._held[0]
        self._names = [str(name) for name in first.columns]
        columns: list[_Column] = []
        try:
            for dtype in first.dtypes:
                columns.append(_Column(dtype, self._directory))
        except OSError as exc:
            for column in columns:
                column.close()
            raise self._error(exc) from exc
        self._columns = columns
        held, self._held, self._held_bytes = self._held, [], 0
        for part in held:
            self._write(part)

    def _write(self, part: pd.DataFrame) -> None:
        assert self._columns is not None
        if [str(name) for name in part.columns] != self._names:
            raise ValueError(f"a part's columns {list(part.columns)} differ from {self._names}")
        try:
            for name, column in zip(self._names, self._columns, strict=True):
                column.write(part[name])
        except OSError as exc:
            self.close()
            raise self._error(exc) from exc
        self._rows += len(part)

    def _error(self, exc: OSError) -> FileNotAccessibleError:
        where = self._directory or tempfile.gettempdir()
        return FileNotAccessibleError(
            f"{self._what} outgrew its share of the memory budget ({self._limit:,} bytes) and cannot be written "
            f"to a temporary file in {where}: {exc.strerror or exc}. Free space there, set TMPDIR to a folder "
            "on a larger disk, or raise memory_budget"
        )
