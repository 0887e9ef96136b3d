"""Sources: forced photometry grouped by ``source_id``, light curves and the bulk measurements frame."""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import functools
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .. import designations, export, frames, memory, science
from ..arguments import EpochLike, check_count, check_epoch_range, check_mjd_range, check_names, check_text
from ..cache import cached
from ..db.base import Backend, Catalog
from ..db.connections import Connections
from ..errors import RecordNotFoundError, ValidationError
from ..export import ExportResult
from ..notes import read as notes_read
from ..notes.read import NotesJoin
from ..records import Source
from ..schema import Kind, column_names, kinds
from ..spill import SpillingParts
from ..vocab import stage_grade_sql
from .filters import Filters, NoteFilter
from .images import image_ident
from .listing import SPLIT_MIN_ROWS
from .paging import Cursor, Keyset, Listing, Page
from .query import Select

PHOTOMETRY_KINDS: dict[str, Kind] = kinds("photometry")
DEFAULT_BATCH_ROWS = 250_000
MAX_BATCH_ROWS = 10_000_000
SOURCE_KINDS: dict[str, Kind] = {
    "source_id": "text",
    "ra_deg": "real",
    "dec_deg": "real",
    "n_measurements": "int",
    "first_mjd": "real",
    "last_mjd": "real",
    "mean_flux_jy": "real",
    "max_flux_jy": "real",
    "nvss_flux_mjy": "real",
}
LIGHTCURVE_KINDS: dict[str, Kind] = {**PHOTOMETRY_KINDS, "flux_from_peak": "bool"}
# From this many ids, measurements() reads two halves at once. Two halves against one read, side by side:
# 0.72x at 5,000 rows, 0.59x at 20,000, 0.54x at 100,000, 0.56x at 1,000,000 (2.53 -> 1.42 s).
SPLIT_MEASUREMENTS_ROWS = SPLIT_MIN_ROWS

# The pipeline falls back to the peak brightness when the integrated flux is missing.
FLUX = "COALESCE(p.flux_jy, p.peak_jyb)"
FLUX_ERR = "CASE WHEN p.flux_jy IS NULL THEN p.peak_err_jyb ELSE p.flux_err_jy END"


# One row per source, aggregated over its photometry rows (``FROM photometry AS p ... GROUP BY p.source_id``).
SOURCE_COLUMNS = (
    "p.source_id AS source_id",
    "AVG(p.ra_deg) AS ra_deg",
    "AVG(p.dec_deg) AS dec_deg",
    "COUNT(*) AS n_measurements",
    "MIN(p.mjd) AS first_mjd",
    "MAX(p.mjd) AS last_mjd",
    f"AVG({FLUX}) AS mean_flux_jy",
    f"MAX({FLUX}) AS max_flux_jy",
    "MAX(p.nvss_flux_mjy) AS nvss_flux_mjy",
)


def _photometry_columns(catalog: Catalog, names: Sequence[str]) -> list[str]:
    present = catalog.columns("photometry")
    return [f"p.{n} AS {n}" if n in present else f"NULL AS {n}" for n in names]


@dataclass(frozen=True)
class SourceFilters(Filters):
    """What ``sources.list``/``sources.page`` keep.

    ``min_detections``: sources with at least that many photometry rows (the pipeline's meaning);
    ``search``: the source id contains this text; ``label``: the source's label in the notes; ``name``: the
    source whose mean position has this J2000 designation (``J123456.7+123456.7``); ``image``: the sources
    measured in this image (its id or path).
    """

    min_detections: int | None = None
    search: str | None = None
    label: str | None = None
    name: str | None = None
    image: int | str | None = None

    note_filter = NoteFilter("label", "source", "p.source_id")

    def apply(self, q: Select, catalog: Catalog) -> Select:
        if self.min_detections is not None:
            check_count(self.min_detections, "min_detections")
            q.having.append("COUNT(*) >= ?")
            q.having_params.append(self.min_detections)
        q.filter_contains("p.source_id", self.search)
        if self.name is not None:
            condition, params = designations.box_sql("AVG(p.ra_deg)", "AVG(p.dec_deg)", self.name)
            q.having.append(condition)
            q.having_params.extend(params)
        if self.image is not None:
            ident = image_ident(self.image)
            if isinstance(ident, int):
                q.filter(
                    "p.source_id IN (SELECT s.source_id FROM photometry AS s JOIN images AS si "
                    "ON si.path = s.image_path WHERE si.id = ?)",
                    ident,
                )
            else:
                q.filter(
                    "p.source_id IN (SELECT s.source_id FROM photometry AS s WHERE s.image_path = ?)",
                    check_text(ident, "image"),
                )
        return self.apply_note_keys(q, catalog)


def add_names(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``name`` column: each source's J2000 designation from its mean position."""
    names = designations.designations(frame["ra_deg"].to_numpy(), frame["dec_deg"].to_numpy())
    frame.insert(1, "name", pd.Series(names, index=frame.index, dtype=frame["source_id"].dtype))
    return frame


def select(catalog: Catalog) -> Select:
    """One row per source over its photometry rows (aliased ``p``)."""
    return Select(
        SOURCE_COLUMNS, "photometry AS p", where=["p.source_id IS NOT NULL"], group_by="p.source_id"
    )


def cone_select(catalog: Catalog, dec_range: tuple[float, float]) -> Select:
    """Every source whose mean position lies in a band of declination (the cone search's candidates)."""
    q = LISTING.list_select(catalog, SourceFilters())
    q.having.append("AVG(p.dec_deg) BETWEEN ? AND ?")
    q.having_params.extend(dec_range)
    return q


# Only the source id is offered: ordering by an aggregate would aggregate every photometry row for each page.
LISTING = Listing(
    Keyset(
        key="p.source_id",
        key_column="source_id",
        table="photometry",
        sorts={"source_id": "p.source_id"},
        descending=False,
    ),
    SourceFilters,
    select,
    SOURCE_KINDS,
    add_names,
    order_by="p.source_id",
)


def lightcurve_query(
    catalog: Catalog, source_id: str, start_mjd: float | None, end_mjd: float | None
) -> tuple[str, list[Any]]:
    """The light curve's SQL: the columns of :func:`lightcurve_columns` the site has (the others come out
    missing: :func:`lightcurve_absent`), the source's rows by MJD."""
    present = catalog.columns("photometry")
    names = [n for n in column_names("photometry") if n not in ("flux_jy", "flux_err_jy") and n in present]
    columns = [
        *(f"p.{n} AS {n}" for n in names),
        f"{FLUX} AS flux_jy",
        f"{FLUX_ERR} AS flux_err_jy",
        "CASE WHEN p.flux_jy IS NULL THEN 1 ELSE 0 END AS flux_from_peak",
    ]
    sql = f"SELECT {', '.join(columns)} FROM photometry AS p WHERE p.source_id = ?"
    params: list[Any] = [check_text(source_id, "source_id")]
    start, end = check_mjd_range(start_mjd, end_mjd)
    if start is not None:
        sql += " AND p.mjd >= ?"
        params.append(start)
    if end is not None:
        sql += " AND p.mjd <= ?"
        params.append(end)
    return sql + " ORDER BY p.mjd, p.id", params


def lightcurve_columns() -> list[str]:
    names = [n for n in column_names("photometry") if n not in ("flux_jy", "flux_err_jy")]
    return [*names, "flux_jy", "flux_err_jy", "flux_from_peak"]


def lightcurve_absent(catalog: Catalog) -> list[str]:
    """The light-curve columns an older schema lacks (six on the seed-era schema): not selected, which
    spared a NULL a row for each, and added to the frame all missing."""
    present = catalog.columns("photometry")
    computed = ("flux_jy", "flux_err_jy", "flux_from_peak")
    return [n for n in lightcurve_columns() if n not in present and n not in computed]


def check_columns(columns: Sequence[str] | None) -> list[str]:
    known = column_names("photometry")
    if columns is None:
        return list(known)
    if isinstance(columns, str) or not columns:
        raise ValidationError("columns must be a non-empty list of photometry column names")
    columns = check_names(columns, "columns")
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise ValidationError(f"unknown photometry column(s) {unknown}; known: {', '.join(known)}")
    return list(dict.fromkeys(columns))


def per_source_counts(
    backend: Backend,
    start_mjd: float | None,
    end_mjd: float | None,
    flux: tuple[str, str] | None = None,
) -> tuple[str, list[Any]]:
    """Measurements per source (within the MJD bounds): what the science calls plan their chunks from. With
    ``flux`` (the flux and error columns) also each source's lowest and highest flux and smallest usable
    error, from which two-epoch knows, before reading a row, which sources can have a candidate pair."""
    sql, params = "SELECT p.source_id AS source_id, COUNT(*) AS n", []
    if flux is not None:
        f, e = (f"p.{name}" if name in backend.catalog.columns("photometry") else "NULL" for name in flux)
        sql += (
            f", MIN({f}) AS lowest, MAX({f}) AS highest,"
            f" MIN(CASE WHEN {f} IS NOT NULL AND {e} > 0 THEN {e} END) AS smallest"
        )
    sql += " FROM photometry AS p"
    start, end = check_mjd_range(start_mjd, end_mjd)
    where = [clause for clause, value in (("p.mjd >= ?", start), ("p.mjd <= ?", end)) if value is not None]
    params = [value for value in (start, end) if value is not None]
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " GROUP BY p.source_id ORDER BY p.source_id", params


# per_source_counts' columns: read as Arrow (a year's 10M sources would be gigabytes as Python rows)
PER_SOURCE_KINDS: dict[str, Kind] = {
    "source_id": "text",
    "n": "int",
    "lowest": "real",
    "highest": "real",
    "smallest": "real",
}


# Finite float64: BETWEEN these drops NULL, NaN and infinities on both databases (and, in SQLite, a text cell).
_FINITE = "BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308"


def per_source_sums(
    backend: Backend,
    flux: tuple[str, str],
    start_mjd: float | None,
    end_mjd: float | None,
    source_ids: Sequence[str] | None,
) -> tuple[str, list[Any]]:
    """``science.SUMS_COLUMNS`` per source, computed by the database in two passes (the means, then the
    deviations from them, as ``science`` does: sums of squares would cancel for nearly constant fluxes). A
    measurement counts where its flux is a finite number; it has a weight 1/err^2 where that is a positive
    finite number (an error outside 1e-154..1e154 has none here)."""
    present = backend.catalog.columns("photometry")
    f, e = (f"p.{name}" if name in present else "NULL" for name in flux)
    where = [f"p.source_id IS NOT NULL AND {f} {_FINITE}"]
    params: list[Any] = []
    start, end = check_mjd_range(start_mjd, end_mjd)
    for clause, value in (("p.mjd >= ?", start), ("p.mjd <= ?", end)):
        if value is not None:
            where.append(clause)
            params.append(value)
    if source_ids is not None:
        clause, values = backend.catalog.dialect.in_list("p.source_id", list(source_ids))
        where.append(clause)
        params += values
    # One range test keeps the error positive and finite with a finite, non-zero square.
    weight = f"CASE WHEN {e} > 1e-154 AND {e} < 1e154 THEN 1.0 / ({e} * {e}) END"
    kept = " AND ".join(where)
    means = f"""
        WITH means AS (
            SELECT p.source_id AS source_id, COUNT(*) AS n, SUM({f}) / COUNT(*) AS mean,
                   SUM({weight} * {f}) / SUM({weight}) AS wmean, MIN({f}) AS lowest, MAX({f}) AS highest,
                   COUNT({weight}) AS weighted_n
            FROM photometry AS p WHERE {kept} GROUP BY p.source_id
        )"""
    squares, chi2 = f"({f} - m.mean) * ({f} - m.mean)", f"{weight} * ({f} - m.wmean) * ({f} - m.wmean)"
    if backend.catalog.dialect.name == "sqlite":
        # Each source's rows again through the source_id index, as two correlated sums: a join would sort
        # every row in a temporary B-tree to group them (3.6-4.0 s against 2.2-2.5 s at 1M rows).
        sql = f"""{means}
            SELECT m.source_id, m.n, m.mean, m.wmean, m.lowest, m.highest, m.weighted_n,
                   (SELECT SUM({squares}) FROM photometry AS p WHERE p.source_id = m.source_id AND {kept})
                       AS squares,
                   (SELECT SUM({chi2}) FROM photometry AS p WHERE p.source_id = m.source_id AND {kept}) AS chi2
            FROM means AS m"""
        return sql, params * 3  # the filters bind once a pass
    # PostgreSQL: a hash join of the rows to their means and a hash aggregate, with parallel workers.
    sql = f"""{means}
        SELECT m.source_id, MIN(m.n) AS n, MIN(m.mean) AS mean, MIN(m.wmean) AS wmean,
               MIN(m.lowest) AS lowest, MIN(m.highest) AS highest, MIN(m.weighted_n) AS weighted_n,
               SUM({squares}) AS squares, SUM({chi2}) AS chi2
        FROM means AS m JOIN photometry AS p ON p.source_id = m.source_id
        WHERE {kept}
        GROUP BY m.source_id"""
    return sql, params + params  # the filters bind twice, once a pass


def measurements_query(
    backend: Backend,
    *,
    source_ids: Sequence[str] | None,
    start_mjd: float | None,
    end_mjd: float | None,
    columns: Sequence[str] | None,
    id_range: tuple[int | None, int] | None = None,
    limit: int | None = None,
    source_range: tuple[str, str] | None = None,
) -> tuple[str, list[Any]]:
    """The photometry rows in id order; ``id_range`` (after, up to) and ``limit`` read one keyset batch,
    ``source_range`` (first, last) one chunk of sources."""
    names = check_columns(columns)
    sql = f"SELECT {', '.join(_photometry_columns(backend.catalog, names))} FROM photometry AS p"
    where: list[str] = []
    params: list[Any] = []
    if id_range is not None:
        after, up_to = id_range
        if after is not None:
            where.append("p.id > ?")
            params.append(after)
        where.append("p.id <= ?")
        params.append(up_to)
    if source_ids is not None:
        if isinstance(source_ids, str):
            raise ValidationError("source_ids must be a list of source ids, not a single string")
        clause, values = backend.catalog.dialect.in_list("p.source_id", check_names(source_ids, "source_ids"))
        where.append(clause)
        params += values
    if source_range is not None:
        where.append("p.source_id BETWEEN ? AND ?")
        params += list(source_range)
    start, end = check_mjd_range(start_mjd, end_mjd)
    if start is not None:
        where.append("p.mjd >= ?")
        params.append(start)
    if end is not None:
        where.append("p.mjd <= ?")
        params.append(end)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY p.id"
    return (sql, params) if limit is None else (f"{sql} LIMIT {int(limit)}", params)


CONTRIBUTING_KINDS: dict[str, Kind] = {
    "image_id": "int",
    "path": "text",
    "ms_path": "text",
    "qa_grade": "text",
    "created_at": "time",
    "mjd": "real",
}


def contributing_query(source_id: str) -> tuple[str, list[Any]]:
    """The images a source was measured in, with their MS, QA grade (as ``images.list`` gives it) and time."""
    sql = (
        f"SELECT i.id AS image_id, i.path AS path, i.ms_path AS ms_path, {stage_grade_sql('m.stage')} AS "
        "qa_grade, i.created_at AS created_at, MIN(p.mjd) AS mjd "
        "FROM photometry AS p JOIN images AS i ON i.path = p.image_path LEFT JOIN ms_index AS m ON m.path = "
        "i.ms_path WHERE p.source_id = ? GROUP BY i.id, i.path, i.ms_path, m.stage, i.created_at "
        "ORDER BY mjd, i.id"
    )
    return sql, [check_text(source_id, "source_id")]


def source_from_lightcurve(
    source_id: str, curve: pd.DataFrame, contributing: pd.DataFrame | None = None
) -> Source:
    flux = curve["flux_jy"]
    contributing = pd.DataFrame(columns=list(CONTRIBUTING_KINDS)) if contributing is None else contributing
    ra, dec = float(curve["ra_deg"].mean()), float(curve["dec_deg"].mean())
    return Source(
        source_id=source_id,
        ra_deg=ra,
        dec_deg=dec,
        n_measurements=len(curve),
        first_mjd=frames.plain(curve["mjd"].min()),
        last_mjd=frames.plain(curve["mjd"].max()),
        mean_flux_jy=frames.plain(flux.mean()),
        max_flux_jy=frames.plain(flux.max()),
        nvss_flux_mjy=frames.plain(curve["nvss_flux_mjy"].max()),
        images=tuple(dict.fromkeys(curve["image_path"].dropna().tolist())),
        name=designations.designations([ra], [dec])[0],
        latest_image_id=frames.plain(contributing["image_id"].iloc[-1]) if len(contributing) else None,
        contributing_images=contributing,
    )


NOTES = NotesJoin("source", "source_id", ("tags", "n_comments", "label"))
_LABELS = NotesJoin("source", "source_id", ("label",))


class Sources:
    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    async def list(
        self,
        *,
        min_detections: int | None = None,
        search: str | None = None,
        label: str | None = None,
        name: str | None = None,
        image: int | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> pd.DataFrame:
        """One row per source: its id, ``name`` (the J2000 designation of its mean position), position,
        number of measurements, first/last MJD, mean and max flux.

        ``min_detections`` keeps sources with at least that many photometry rows (the pipeline's meaning);
        ``search`` keeps source ids containing that text; ``label`` keeps sources with that label in the
        notes; ``name`` keeps the source with that designation (``"J123456.7+123456.7"``, at the precision
        given); ``image`` keeps the sources measured in that image (id or path). Fluxes fall back to the
        peak brightness where the integrated flux is missing. From the notes: ``tags``, ``n_comments`` and
        ``label``.
        """
        filters = SourceFilters(
            min_detections=min_detections, search=search, label=label, name=name, image=image
        )
        filters = await notes_read.resolve(self._connections, filters)
        return await notes_read.annotated(self._connections, self._list(filters, limit, offset), NOTES)

    @cached("sources:list")
    async def _list(self, filters: SourceFilters, limit: int | None, offset: int) -> pd.DataFrame:
        db = await self._connections.products()
        sql, params = LISTING.list_select(db.catalog, filters, limit=limit, offset=offset).build()
        return await db.fetch_frame(sql, params, SOURCE_KINDS, post=add_names)

    async def page(
        self,
        filters: SourceFilters | Mapping[str, Any] | None = None,
        *,
        sort: str = "source_id",
        descending: bool = False,
        after: Cursor | None = None,
        before: Cursor | None = None,
        number: int | None = None,
        last: bool = False,
        size: int = 50,
        count: bool = True,
    ) -> Page:
        """One page of sources in source id order, with :meth:`list`'s filters (a ``SourceFilters`` or a
        dict such as ``{"min_detections": 10}``). Paging as in ``images.page``."""
        wanted = await notes_read.resolve(self._connections, SourceFilters.of(filters))
        db = await self._connections.products()
        found = await LISTING.page(
            db, wanted, sort=sort, descending=descending, after=after, before=before, number=number,
            last=last, size=size, count=count,
        )  # fmt: skip
        return await notes_read.annotate_page(self._connections, found, NOTES)

    async def get(self, source_id: str) -> Source:
        """One source with its summary numbers, its ``name``, and the images it was measured in:
        ``contributing_images`` (image id, path, MS path, QA grade, time) and ``latest_image_id``."""
        db = await self._connections.products()
        sql, params = contributing_query(source_id)
        curve, contributing = await asyncio.gather(
            self.lightcurve(source_id), db.fetch_frame(sql, params, CONTRIBUTING_KINDS)
        )
        return source_from_lightcurve(source_id, curve, contributing)

    async def lightcurve(
        self,
        source_id: str,
        *,
        start: EpochLike | None = None,
        end: EpochLike | None = None,
        start_mjd: float | None = None,
        end_mjd: float | None = None,
    ) -> pd.DataFrame:
        """A source's photometry ordered by MJD. ``flux_jy``/``flux_err_jy`` fall back to the peak values
        where the integrated flux is missing; ``flux_from_peak`` marks those rows.

        ``start``/``end`` bound the MJD, inclusive: an MJD (a number), a datetime, an ISO-8601 string
        (``"2026-11-30"``, UTC) or an astropy ``Time``. ``start_mjd``/``end_mjd`` are the older names for
        MJD bounds; give one of each pair."""
        start_mjd, end_mjd = _epoch_bounds(start, end, start_mjd, end_mjd)
        db = await self._connections.products()
        sql, params = lightcurve_query(db.catalog, source_id, start_mjd, end_mjd)
        found = await db.fetch_small_frame(
            sql, params, lightcurve_columns(), LIGHTCURVE_KINDS, lightcurve_absent(db.catalog)
        )
        if found.empty and not await _source_exists(db, source_id):
            raise RecordNotFoundError("source", source_id)
        return found

    async def measurements(
        self,
        *,
        source_ids: Sequence[str] | None = None,
        start_mjd: float | None = None,
        end_mjd: float | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The photometry table as one frame (Arrow path), ordered by id; the bulk path for science.

        A long table is read as two id halves at once (two reader processes on SQLite, two sessions on
        PostgreSQL), joined as Arrow: the rows up to the highest id there was when it began."""
        db = await self._connections.products()
        sql, params = measurements_query(
            db, source_ids=source_ids, start_mjd=start_mjd, end_mjd=end_mjd, columns=columns
        )
        if source_ids is None:
            low, high = (await db.fetch_rows("SELECT MIN(id), MAX(id) FROM photometry"))[0]
            if low is not None and int(high) - int(low) + 1 >= SPLIT_MEASUREMENTS_ROWS:
                middle = (int(low) + int(high)) // 2
                halves = [
                    measurements_query(
                        db, source_ids=None, start_mjd=start_mjd, end_mjd=end_mjd, columns=columns,
                        id_range=id_range,
                    )
                    for id_range in ((None, middle), (middle, int(high)))
                ]  # fmt: skip
                return await db.fetch_frame_parts(halves, PHOTOMETRY_KINDS)
        return await db.fetch_frame(sql, params, PHOTOMETRY_KINDS)

    async def iter_measurements(
        self,
        *,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        source_ids: Sequence[str] | None = None,
        start_mjd: float | None = None,
        end_mjd: float | None = None,
        columns: Sequence[str] | None = None,
    ) -> AsyncIterator[pd.DataFrame]:
        """:meth:`measurements` in batches of at most ``batch_rows`` rows (1 to 10,000,000; default 250,000),
        in id order, so memory holds one batch whatever the table's size. Each batch is one keyset query
        (``id > last``) read as Arrow. Rows written while it runs are not included: it stops at the highest
        id there was when it began."""
        rows = check_count(batch_rows, "batch_rows", low=1, high=MAX_BATCH_ROWS)
        names = check_columns(columns)
        db = await self._connections.products()
        top = (await db.fetch_rows("SELECT MAX(id) FROM photometry"))[0][0]
        if top is None:
            return
        wanted = names if "id" in names else ["id", *names]  # the keyset needs the id
        last: int | None = None
        while True:
            sql, params = measurements_query(
                db, source_ids=source_ids, start_mjd=start_mjd, end_mjd=end_mjd, columns=wanted,
                id_range=(last, int(top)), limit=rows,
            )  # fmt: skip
            batch = await db.fetch_frame(sql, params, PHOTOMETRY_KINDS)
            if batch.empty:
                return
            last = int(batch["id"].iloc[-1])
            yield batch if wanted is names else batch.drop(columns="id")
            if len(batch) < rows:
                return

    async def export(
        self,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        source_ids: Sequence[str] | None = None,
        start_mjd: float | None = None,
        end_mjd: float | None = None,
        columns: Sequence[str] | None = None,
        overwrite: bool = False,
        progress: bool = True,
    ) -> ExportResult:
        """Write the photometry (with :meth:`measurements`' filters) to a Parquet or CSV file, streamed in
        batches (:meth:`iter_measurements`), with a progress bar. ``format`` is ``"parquet"`` or ``"csv"``
        (by default the file's suffix says). Beside it, ``<file>.manifest.json`` records the query and its
        parameters, the database's change counter, the toolkit's version, the time and the row count.

        The file appears only when complete (written to a temporary name, then renamed); an existing file
        is replaced only with ``overwrite=True``. Reading a Parquet export back with ``pd.read_parquet``
        gives the frame :meth:`measurements` returns."""
        target, kind = export.check_target(path, format, overwrite)
        names = check_columns(columns)
        db = await self._connections.products()
        sql, params = measurements_query(
            db, source_ids=source_ids, start_mjd=start_mjd, end_mjd=end_mjd, columns=names
        )
        counted = await db.fetch_rows(f"SELECT COUNT(*) FROM ({sql}) AS q", params)
        version = await db.data_version()
        batches = self.iter_measurements(
            batch_rows=batch_rows, source_ids=source_ids, start_mjd=start_mjd, end_mjd=end_mjd, columns=names
        )
        return await export.write_batches(
            batches, target, kind, total=int(counted[0][0]), progress=progress,
            manifest={
                "what": "photometry", "query": sql, "params": params, "data_version": version,
                "filters": {"source_ids": list(source_ids or []) or None, "start_mjd": start_mjd,
                            "end_mjd": end_mjd, "columns": names},
            },
        )  # fmt: skip

    # ------------------------------------------------------------------------------- science
    async def _science_frames(
        self,
        flux: str,
        start_mjd: float | None,
        end_mjd: float | None,
        compute: Callable[[pd.DataFrame], pd.DataFrame],
        source_ids: Sequence[str] | None = None,
    ) -> builtins.list[pd.DataFrame]:
        """Every part of :meth:`_science_parts`, for the callers whose answer is one row a source."""
        return [part async for part in self._science_parts(flux, start_mjd, end_mjd, compute, source_ids)]

    def _science_parts(
        self,
        flux: str,
        start_mjd: float | None,
        end_mjd: float | None,
        compute: Callable[[pd.DataFrame], pd.DataFrame],
        source_ids: Sequence[str] | None = None,
        groups: Sequence[Sequence[str]] | None = None,
    ) -> AsyncIterator[pd.DataFrame]:
        """:func:`per_source_parts` over the four columns the metrics need."""
        return per_source_parts(
            self._connections,
            compute,
            science.needed_columns(flux),
            start_mjd=start_mjd,
            end_mjd=end_mjd,
            source_ids=source_ids,
            groups=groups,
        )

    def _budget_rows(self) -> int:
        return max(1, self._connections.settings.memory_budget // science.BYTES_PER_ROW)

    async def variability(
        self,
        *,
        flux: str = "flux_jy",
        min_measurements: int = 2,
        start_mjd: float | None = None,
        end_mjd: float | None = None,
        source_ids: Sequence[str] | None = None,
        pairs: bool = True,
    ) -> pd.DataFrame:
        """Per source: n, mean / weighted-mean / max / min flux, ``std_flux_jy``, eta, V, ``chi2``,
        ``chi2_reduced``, the largest |Vs| and |m| over its epoch pairs, and ``is_variable``.

        ``pairs=False`` leaves out the two pair columns, and then the database computes everything (one
        two-pass ``GROUP BY``, with parallel workers on PostgreSQL) and no measurement is read here: the way
        to eta and V over a year of photometry without reading it. It is one query: at survey scale give it
        a ``query_timeout`` to match (10M rows take about 20 s on SQLite).

        Definitions (:mod:`toolkit.science`): with weights w = 1/err^2, chi2 = sum w (f - weighted mean)^2,
        and chi2_reduced = chi2 / (N - 1) over the N measurements that have an error, which is eta;
        V = std(f) / mean(f); ``is_variable`` is the pipeline API's flag, V > 0.1. ``flux`` is ``flux_jy``,
        ``peak_jyb`` or ``normalized_flux_jy``, each with its own error column. ``source_ids`` computes
        those sources only, in the same one query; an id with no photometry raises ``RecordNotFoundError``."""
        flux, err = science.flux_and_error(flux)
        if (
            isinstance(min_measurements, bool)
            or not isinstance(min_measurements, int)
            or min_measurements < 1
        ):
            raise ValidationError(f"min_measurements must be a whole number >= 1, got {min_measurements!r}")
        if not isinstance(pairs, bool):
            raise ValidationError(f"pairs must be True or False, got {pairs!r}")

        def compute(frame: pd.DataFrame) -> pd.DataFrame:
            return science.variability(frame, flux=flux, err=err, min_measurements=min_measurements)

        wanted = None if source_ids is None else check_source_ids(source_ids)
        db = await self._connections.products()
        if pairs:
            parts = await self._science_frames(flux, start_mjd, end_mjd, compute, wanted)
            found = await db.compute(join_parts, parts, ["source_id"])  # a sort of every source: off the loop
        else:
            sql, params = per_source_sums(db, (flux, err), start_mjd, end_mjd, wanted)
            found = await db.fetch_frame(
                sql, params, SUMS_KINDS,
                post=functools.partial(science.variability_from_sums, min_measurements=min_measurements),
            )  # fmt: skip
        if wanted is not None:
            missing = sorted(set(wanted) - set(found["source_id"]))
            if missing and not await _sources_exist(await self._connections.products(), missing):
                raise RecordNotFoundError(
                    "source", missing[0], f"{len(missing)} of the source_ids have no photometry"
                )
        return found

    async def two_epoch(
        self,
        *,
        vs: float = science.VS_DEFAULT,
        m: float = science.M_DEFAULT,
        flux: str = "flux_jy",
        start_mjd: float | None = None,
        end_mjd: float | None = None,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(candidate sources, candidate pairs): epoch pairs with |Vs| > ``vs`` and |m| > ``m`` (the field's
        usual 4.3 and 0.26). The candidate sources carry their ``label`` from the notes.

        The pairs grow with the survey (about 3 million at 10 million measurements on the bench site, 200
        MiB). Past an eighth of ``memory_budget`` they are kept in unnamed temporary files (in ``TMPDIR``)
        and the pairs frame reads them through copy-on-write maps: pages come from disk as they are touched,
        as page cache the system can reclaim (:mod:`toolkit.spill`). :meth:`iter_two_epoch` hands them over
        a group of sources at a time instead, to be written out as they come."""
        sources: builtins.list[pd.DataFrame] = []
        # The groups come in the answer's order, so their pairs are joined as they come; past an eighth of
        # the budget they go to a temporary file and come back mapped (toolkit.spill): the budget bounds the
        # memory, not the number of pairs. An eighth, not a quarter: one group's pair blocks take another
        # ~35 MiB while the held pairs wait, and at a quarter the 10M-row call peaked 1.24x the 1M one.
        pairs = SpillingParts(self._connections.settings.memory_budget // 8, what="two_epoch's pairs")
        db = await self._connections.products()
        try:
            async for found, found_pairs in self.iter_two_epoch(
                vs=vs, m=m, flux=flux, start_mjd=start_mjd, end_mjd=end_mjd, label=False
            ):
                sources.append(found)
                await db.compute(pairs.add, found_pairs)
                del found_pairs
            joined_pairs = await db.compute(pairs.frame)
        finally:
            pairs.close()
        joined = await db.compute(join_parts, sources, ["source_id"])
        return await notes_read.annotate(self._connections, joined, _LABELS), joined_pairs

    async def iter_two_epoch(
        self,
        *,
        vs: float = science.VS_DEFAULT,
        m: float = science.M_DEFAULT,
        flux: str = "flux_jy",
        start_mjd: float | None = None,
        end_mjd: float | None = None,
        label: bool = True,
    ) -> AsyncIterator[tuple[pd.DataFrame, pd.DataFrame]]:
        """:meth:`two_epoch` a group of sources at a time: (candidate sources, their candidate pairs) for
        each group, every epoch of a source in the same group, so each part is final. A group's
        measurements and all their possible pairs fit the ``memory_budget``, and memory holds one group's
        pairs: the way to the pairs of a year of photometry (write each part out, e.g.
        ``pairs.to_parquet``). Groups come in order of source id (Python's string order), each sorted by
        (source_id, mjd_a, mjd_b); a group without a candidate is skipped (with no candidate at all, one
        empty part comes). ``label=False`` leaves out the notes' ``label`` column."""
        flux, err = science.flux_and_error(flux)
        science.check_two_epoch_thresholds(vs, m)  # before reading a million rows
        if not isinstance(label, bool):
            raise ValidationError(f"label must be True or False, got {label!r}")
        found: builtins.list[pd.DataFrame] = []

        def compute(frame: pd.DataFrame) -> pd.DataFrame:
            sources, pairs = science.two_epoch(frame, vs=vs, m=m, flux=flux, err=err)
            found.append(sources)
            return pairs

        # Pushed down: one GROUP BY gives each source's flux range and smallest error, and only the rows of
        # sources that can hold a pair above both thresholds are read (5% of the bench site's sources).
        db = await self._connections.products()
        sql, params = per_source_counts(db, start_mjd, end_mjd, (flux, err))
        bounds = await db.fetch_frame(sql, params, PER_SOURCE_KINDS)
        groups = await db.compute(_two_epoch_groups, bounds, vs, m, self._budget_rows())
        del bounds

        async def part(sources: pd.DataFrame, pairs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
            return (
                await notes_read.annotate(self._connections, sources, _LABELS) if label else sources
            ), pairs

        empty: tuple[pd.DataFrame, pd.DataFrame] | None = None
        yielded = False
        async for pairs in self._science_parts(flux, start_mjd, end_mjd, compute, groups=groups or [[]]):
            sources = found.pop()
            if len(sources):
                yielded = True
                yield await part(sources, pairs)
            else:
                empty = sources, pairs
        if not yielded and empty is not None:  # no candidate anywhere: one empty (typed) part says so
            yield await part(*empty)

    async def eta_v(
        self,
        *,
        eta_sigma: float = 2.0,
        v_sigma: float = 2.0,
        flux: str = "flux_jy",
        min_measurements: int = 2,
        start_mjd: float | None = None,
        end_mjd: float | None = None,
        pairs: bool = True,
    ) -> science.EtaVResult:
        """eta-V cutoffs (log-Gaussian fit after 3-sigma MAD clipping) and the sources above both.

        The cutoffs sit ``eta_sigma``/``v_sigma`` standard deviations above the fitted mean (default 2, which
        finds the demo site's variable sources and its transient and nothing else on the small site). The
        candidates carry their ``label`` from the notes. ``pairs=False`` computes the metrics in the database
        without the pair columns (see :meth:`variability`); the cutoffs need eta and V only."""
        metrics = await self.variability(
            flux=flux, min_measurements=min_measurements, start_mjd=start_mjd, end_mjd=end_mjd, pairs=pairs
        )
        result = science.eta_v(metrics, eta_sigma=eta_sigma, v_sigma=v_sigma)
        labelled = await notes_read.annotate(self._connections, result.candidates, _LABELS)
        return dataclasses.replace(result, candidates=labelled)

    async def cone(self, ra_deg: float, dec_deg: float, radius_arcsec: float) -> pd.DataFrame:
        """Sources within ``radius_arcsec`` of a position, nearest first, with ``sep_arcsec`` (great circle;
        right across RA 0/360 and at the poles)."""
        science.check_position(ra_deg, dec_deg)
        science.check_radius(radius_arcsec)
        margin = radius_arcsec / 3600.0 + 1e-6
        db = await self._connections.products()
        band = (max(-90.0, dec_deg - margin), min(90.0, dec_deg + margin))
        sql, params = cone_select(db.catalog, band).build()

        def compute(frame: pd.DataFrame) -> pd.DataFrame:
            return science.cone(frame, ra_deg, dec_deg, radius_arcsec)

        return await db.fetch_frame(sql, params, SOURCE_KINDS, post=compute)

    async def crossmatch(self, catalog: Any, radius_arcsec: float) -> pd.DataFrame:
        """For each row of ``catalog`` (a DataFrame with ra_deg/dec_deg or ra/dec, an astropy Table or a
        SkyCoord), the nearest source within ``radius_arcsec``: source_id and sep_arcsec, NA where none."""
        science.check_radius(radius_arcsec)
        science.catalog_positions(catalog)  # a bad catalog fails before any query
        db = await self._connections.products()
        sql, params = LISTING.list_select(db.catalog, SourceFilters()).build()

        def compute(frame: pd.DataFrame) -> pd.DataFrame:
            return science.crossmatch(frame, catalog, radius_arcsec)

        return await db.fetch_frame(sql, params, SOURCE_KINDS, post=compute)


MAX_SOURCE_IDS = 100_000
SUMS_KINDS: dict[str, Kind] = {
    name: "text" if name == "source_id" else "real" for name in science.SUMS_COLUMNS
}


async def per_source_parts(
    connections: Connections,
    compute: Callable[[pd.DataFrame], pd.DataFrame],
    columns: Sequence[str],
    *,
    bytes_per_row: int = science.BYTES_PER_ROW,
    start_mjd: float | None = None,
    end_mjd: float | None = None,
    source_ids: Sequence[str] | None = None,
    groups: Sequence[Sequence[str]] | None = None,
) -> AsyncIterator[pd.DataFrame]:
    """``compute`` over the photometry's ``columns``, in the backend's worker (no loop stall), in bounded
    memory: when the table could hold more rows than the ``memory_budget`` allows (at ``bytes_per_row``,
    what ``compute`` costs a row), the sources are read and computed in chunks of whole sources
    (``source_id BETWEEN first AND last``, an index range), one chunk at a time, each chunk's result yielded
    before the next is read. Per-source results do not depend on the other sources, so the chunks' results
    are the whole table's (the callers put them in the whole table's order, :func:`join_parts`). ``groups``
    (planned under the same budget) reads just those sources instead, a group at a time."""
    db = await connections.products()
    budget_rows = max(1, connections.settings.memory_budget // bytes_per_row)
    chunks: builtins.list[tuple[str, str] | None] = [None]
    if groups is None and source_ids is None:
        low, high = (await db.fetch_rows("SELECT MIN(id), MAX(id) FROM photometry"))[0]
        if low is not None and int(high) - int(low) + 1 > budget_rows:  # ids bound the row count
            sql, params = per_source_counts(db, start_mjd, end_mjd)
            counts = await db.fetch_frame(sql, params, PER_SOURCE_KINDS)
            chunks = list(await db.compute(science.chunk_sources, counts, budget_rows)) or [None]
            del counts
    reads: builtins.list[tuple[Sequence[str] | None, tuple[str, str] | None]]
    reads = [(ids, None) for ids in groups] if groups is not None else [(source_ids, c) for c in chunks]
    for ids, chunk in reads:
        sql, params = measurements_query(
            db,
            source_ids=ids,
            start_mjd=start_mjd,
            end_mjd=end_mjd,
            columns=columns,
            source_range=chunk,
        )
        part = await db.fetch_frame(sql, params, PHOTOMETRY_KINDS, post=compute)
        if len(reads) > 1:
            await db.compute(memory.release_unused)  # the chunk's frame is freed by now
        yield part


def _two_epoch_groups(
    bounds: pd.DataFrame, vs: float, m: float, budget_rows: int
) -> builtins.list[builtins.list[str]]:
    """The groups of sources two-epoch reads: those that can hold a candidate pair, each group under the
    budget with its rows and its most candidate pairs (one group's answer is what memory holds)."""
    # Python's order of ids (the database's may differ under a locale's collation): each group's pairs come
    # sorted, so the groups' pairs joined as they come are the whole answer's order, with no sort of it.
    possible = sorted(science.two_epoch_possible(bounds, vs=vs, m=m))
    return science.group_sources(science.pair_weighted(possible), budget_rows)


def join_parts(parts: Sequence[pd.DataFrame], order: builtins.list[str]) -> pd.DataFrame:
    """Chunks' results as one frame in the whole table's order (the database's order of source ids may
    not be Python's); an empty chunk's frame (untyped columns) is left out of the join."""
    kept = [p for p in parts if len(p)] or list(parts[:1])
    if len(kept) == 1:
        return kept[0]
    joined = pd.concat(kept, ignore_index=True)
    if joined[order[0]].is_monotonic_increasing:  # the database's order was Python's: no sorted copy
        return joined  # (each chunk is sorted and holds whole sources, so the later keys are in order too)
    return joined.sort_values(order, kind="stable", ignore_index=True)


def check_source_ids(source_ids: Any) -> list[str]:
    if isinstance(source_ids, str):
        raise ValidationError("source_ids must be a list of source ids, not a single string")
    ids = list(dict.fromkeys(check_names(source_ids, "source_ids")))
    if len(ids) > MAX_SOURCE_IDS:
        raise ValidationError(f"at most {MAX_SOURCE_IDS:,} source_ids at once; got {len(ids):,}")
    return ids


async def _sources_exist(db: Backend, missing: list[str]) -> bool:
    """True when every id absent from a variability frame has photometry (too few measurements, or none in
    the window), False when one has none at all."""
    clause, params = db.catalog.dialect.in_list("source_id", missing)
    rows = await db.fetch_rows(f"SELECT COUNT(DISTINCT source_id) FROM photometry WHERE {clause}", params)
    return int(rows[0][0]) == len(missing)


def _epoch_bounds(
    start: EpochLike | None, end: EpochLike | None, start_mjd: float | None, end_mjd: float | None
) -> tuple[float | None, float | None]:
    if (start is not None and start_mjd is not None) or (end is not None and end_mjd is not None):
        raise ValidationError("give start or start_mjd (and end or end_mjd), not both")
    first, last = check_epoch_range(start, end)
    return check_mjd_range(start_mjd if first is None else first, end_mjd if last is None else last)


async def _source_exists(db: Backend, source_id: str) -> bool:
    return bool(await db.fetch_rows("SELECT 1 FROM photometry WHERE source_id = ? LIMIT 1", [source_id]))
