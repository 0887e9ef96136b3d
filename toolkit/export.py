"""Exports of any size: batches streamed to a Parquet or CSV file, then a manifest beside it.

The file is written under a temporary name in the same folder and renamed when complete, so a failed or
cancelled export leaves no half-written file where a reader would take it for a whole one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .errors import FileNotAccessibleError, ValidationError
from .files import check_output_path, write_atomically
from .records import Record

if TYPE_CHECKING:
    from .domains.paging import Cursor, Page

SUFFIXES: dict[str, tuple[str, ...]] = {"parquet": (".parquet", ".pq"), "csv": (".csv",)}
MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True)
class ExportResult(Record):
    """What an export wrote: the file, its manifest, rows and bytes."""

    path: Path
    manifest: Path
    format: str
    rows: int
    bytes: int

    def title(self) -> str:
        return f"export {self.path.name} ({self.rows:,} rows, {self.bytes:,} bytes)"


def check_target(path: str | os.PathLike[str], format: str | None, overwrite: bool) -> tuple[Path, str]:
    """The file to write and its format (from ``format`` or the suffix), refusing what cannot work: the
    checks every file the toolkit writes gets (:func:`toolkit.files.check_output_path`), and an existing
    file unless ``overwrite``."""
    if not isinstance(path, str | os.PathLike):
        raise ValidationError(f"path must be a file name, got {path!r}")
    kind = format if format is not None else Path(os.fspath(path)).suffix.lower().lstrip(".")
    if not isinstance(kind, str) or kind not in SUFFIXES:
        raise ValidationError(
            f"format must be one of {', '.join(SUFFIXES)} (given, or said by the file's suffix), got {kind!r}"
        )
    if not isinstance(overwrite, bool):
        raise ValidationError(f"overwrite must be True or False, got {overwrite!r}")
    target = check_output_path(path, SUFFIXES[kind], f"a {kind} export")
    if target.exists() and not overwrite:
        raise ValidationError(f"{target} exists: pass overwrite=True to replace it")
    return target, kind


def _version() -> str:
    try:
        return metadata.version("contimg-toolkit")
    except metadata.PackageNotFoundError:
        return "unknown"


class _Writer:
    """One format's writer over a temporary file (blocking; called in a worker thread)."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        self._parquet: Any = None
        self._schema: Any = None
        self._csv = open(path, "w", newline="", encoding="utf-8") if kind == "csv" else None  # noqa: SIM115

    def write(self, frame: pd.DataFrame) -> None:
        if self._csv is not None:
            frame.to_csv(
                self._csv, header=self._csv.tell() == 0, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ"
            )
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._parquet is None:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            self._schema = table.schema
            self._parquet = pq.ParquetWriter(self.path, self._schema, compression="zstd")
        else:  # later batches keep the first's schema (and its pandas metadata, so dtypes read back)
            table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
        self._parquet.write_table(table)

    def close(self) -> None:
        if self._csv is not None:
            self._csv.close()
        if self._parquet is not None:
            self._parquet.close()


async def write_batches(
    batches: AsyncIterator[pd.DataFrame],
    target: Path,
    kind: str,
    *,
    total: int,
    progress: bool,
    manifest: dict[str, Any],
    empty: pd.DataFrame | None = None,
) -> ExportResult:
    """Stream ``batches`` into ``target`` (via a temporary file), then write ``<target>.manifest.json``.
    ``empty`` is what a file with no rows holds (its columns); by default the manifest's columns."""
    from tqdm.auto import tqdm

    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    writer: _Writer | None = None
    rows = 0
    bar = tqdm(
        total=total or None, unit="rows", desc=f"export {target.name}", disable=not progress, leave=False
    )
    try:
        try:
            writer = await asyncio.to_thread(_Writer, partial, kind)
            async for batch in batches:
                await asyncio.to_thread(writer.write, batch)
                rows += len(batch)
                bar.update(len(batch))
            if rows == 0:  # an empty export is still a readable file with its columns
                if empty is None:
                    names = manifest["filters"].get("columns", [])
                    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in names})
                await asyncio.to_thread(writer.write, empty)
        finally:
            bar.close()
            if writer is not None:
                await asyncio.to_thread(writer.close)
        os.replace(partial, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise FileNotAccessibleError(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    size = (await asyncio.to_thread(target.stat)).st_size
    record = {
        "file": target.name,
        "format": kind,
        "rows": rows,
        "bytes": size,
        **manifest,
        "toolkit_version": _version(),
        "written_at": datetime.now(UTC).isoformat(),
    }
    manifest_path = target.with_name(target.name + MANIFEST_SUFFIX)
    await asyncio.to_thread(write_atomically, manifest_path, json.dumps(record, indent=2, default=str) + "\n")
    return ExportResult(target, manifest_path, kind, rows, size)


# Reads one page of an area's listing: (after, count) -> Page, through the area's own ``page``.
PageReader = Callable[["Cursor | None", bool], Awaitable["Page"]]


async def write_listing(
    read_page: PageReader,
    target: Path,
    kind: str,
    *,
    progress: bool,
    manifest: dict[str, Any],
) -> ExportResult:
    """An area's listing (images, MS, jobs) streamed to ``target`` page by page: each page a keyset read
    from the row the last one ended at, so memory holds one page and rows the pipeline adds meanwhile (the
    newest, at the listing's start) do not shift the pages still to come."""
    first = await read_page(None, True)

    async def pages() -> AsyncIterator[pd.DataFrame]:
        page = first
        while True:
            if len(page.rows):
                yield page.rows
            if page.next is None:
                return
            page = await read_page(page.next, False)

    order = f"{first.sort} {'descending' if first.descending else 'ascending'}"
    return await write_batches(
        pages(), target, kind, total=first.count if first.count and not first.capped else 0,
        progress=progress, manifest={**manifest, "order": order}, empty=first.rows.iloc[:0],
    )  # fmt: skip
