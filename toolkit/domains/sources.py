"""Sources: forced photometry grouped by ``source_id``, light curves and the bulk measurements frame."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from .. import frames
from ..arguments import check_limit, check_mjd_range, check_text
from ..db.base import Backend, Catalog
from ..db.connections import Connections
from ..errors import RecordNotFoundError, ValidationError
from ..records import Source
from ..schema import Kind, column_names, kinds

PHOTOMETRY_KINDS: dict[str, Kind] = kinds("photometry")
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

# The pipeline falls back to the peak brightness when the integrated flux is missing.
FLUX = "COALESCE(p.flux_jy, p.peak_jyb)"
FLUX_ERR = "CASE WHEN p.flux_jy IS NULL THEN p.peak_err_jyb ELSE p.flux_err_jy END"


def _photometry_columns(catalog: Catalog, names: Sequence[str]) -> list[str]:
    present = catalog.columns("photometry")
    return [f"p.{n} AS {n}" if n in present else f"NULL AS {n}" for n in names]


def list_query(
    catalog: Catalog, *, min_detections: int | None = None, limit: int | None = None, offset: int = 0
) -> tuple[str, list[Any]]:
    limit, offset = check_limit(limit, offset)
    if min_detections is not None and (
        isinstance(min_detections, bool) or not isinstance(min_detections, int) or min_detections < 0
    ):
        raise ValidationError(f"min_detections must be a whole number >= 0, got {min_detections!r}")
    sql = (
        "SELECT p.source_id AS source_id, AVG(p.ra_deg) AS ra_deg, AVG(p.dec_deg) AS dec_deg, "
        "COUNT(*) AS n_measurements, MIN(p.mjd) AS first_mjd, MAX(p.mjd) AS last_mjd, "
        f"AVG({FLUX}) AS mean_flux_jy, MAX({FLUX}) AS max_flux_jy, MAX(p.nvss_flux_mjy) AS nvss_flux_mjy "
        "FROM photometry AS p WHERE p.source_id IS NOT NULL GROUP BY p.source_id"
    )
    params: list[Any] = []
    if min_detections is not None:
        sql += " HAVING COUNT(*) >= ?"
        params.append(min_detections)
    sql += " ORDER BY p.source_id"
    if limit is not None or offset:
        sql += " LIMIT ? OFFSET ?"
        params += [-1 if limit is None else limit, offset]
    return sql, params


def lightcurve_query(
    catalog: Catalog, source_id: str, start_mjd: float | None, end_mjd: float | None
) -> tuple[str, list[Any]]:
    names = [n for n in column_names("photometry") if n not in ("flux_jy", "flux_err_jy")]
    columns = [
        *_photometry_columns(catalog, names),
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


def check_columns(columns: Sequence[str] | None) -> list[str]:
    known = column_names("photometry")
    if columns is None:
        return list(known)
    if isinstance(columns, str) or not columns:
        raise ValidationError("columns must be a non-empty list of photometry column names")
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise ValidationError(f"unknown photometry column(s) {unknown}; known: {', '.join(known)}")
    return list(dict.fromkeys(columns))


def measurements_query(
    backend: Backend,
    *,
    source_ids: Sequence[str] | None,
    start_mjd: float | None,
    end_mjd: float | None,
    columns: Sequence[str] | None,
) -> tuple[str, list[Any]]:
    names = check_columns(columns)
    sql = f"SELECT {', '.join(_photometry_columns(backend.catalog, names))} FROM photometry AS p"
    where: list[str] = []
    params: list[Any] = []
    if source_ids is not None:
        if isinstance(source_ids, str):
            raise ValidationError("source_ids must be a list of source ids, not a single string")
        clause, values = backend.in_list("p.source_id", [check_text(s, "source id") for s in source_ids])
        where.append(clause)
        params += values
    start, end = check_mjd_range(start_mjd, end_mjd)
    if start is not None:
        where.append("p.mjd >= ?")
        params.append(start)
    if end is not None:
        where.append("p.mjd <= ?")
        params.append(end)
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY p.id", params


def source_from_lightcurve(source_id: str, curve: pd.DataFrame) -> Source:
    flux = curve["flux_jy"]
    return Source(
        source_id=source_id,
        ra_deg=float(curve["ra_deg"].mean()),
        dec_deg=float(curve["dec_deg"].mean()),
        n_measurements=len(curve),
        first_mjd=frames.plain(curve["mjd"].min()),
        last_mjd=frames.plain(curve["mjd"].max()),
        mean_flux_jy=frames.plain(flux.mean()),
        max_flux_jy=frames.plain(flux.max()),
        nvss_flux_mjy=frames.plain(curve["nvss_flux_mjy"].max()),
        images=tuple(dict.fromkeys(curve["image_path"].dropna().tolist())),
    )


class Sources:
    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    async def list(
        self, *, min_detections: int | None = None, limit: int | None = None, offset: int = 0
    ) -> pd.DataFrame:
        """One row per source: position, number of measurements, first/last MJD, mean and max flux.

        ``min_detections`` keeps sources with at least that many photometry rows (the pipeline's meaning).
        Fluxes fall back to the peak brightness where the integrated flux is missing.
        """
        db = await self._connections.products()
        sql, params = list_query(db.catalog, min_detections=min_detections, limit=limit, offset=offset)
        return await db.fetch_frame(sql, params, SOURCE_KINDS)

    async def get(self, source_id: str) -> Source:
        """One source with its summary numbers and the images it was measured in."""
        curve = await self.lightcurve(source_id)
        return source_from_lightcurve(source_id, curve)

    async def lightcurve(
        self, source_id: str, *, start_mjd: float | None = None, end_mjd: float | None = None
    ) -> pd.DataFrame:
        """A source's photometry ordered by MJD. ``flux_jy``/``flux_err_jy`` fall back to the peak values
        where the integrated flux is missing; ``flux_from_peak`` marks those rows."""
        db = await self._connections.products()
        sql, params = lightcurve_query(db.catalog, source_id, start_mjd, end_mjd)
        rows = await db.fetch_rows(sql, params)
        if not rows and not await _source_exists(db, source_id):
            raise RecordNotFoundError("source", source_id)
        return frames.from_rows(rows, lightcurve_columns(), LIGHTCURVE_KINDS)

    async def measurements(
        self,
        *,
        source_ids: Sequence[str] | None = None,
        start_mjd: float | None = None,
        end_mjd: float | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The photometry table as one frame (Arrow path), ordered by id; the bulk path for science."""
        db = await self._connections.products()
        sql, params = measurements_query(
            db, source_ids=source_ids, start_mjd=start_mjd, end_mjd=end_mjd, columns=columns
        )
        return await db.fetch_frame(sql, params, PHOTOMETRY_KINDS)


async def _source_exists(db: Backend, source_id: str) -> bool:
    return bool(await db.fetch_rows("SELECT 1 FROM photometry WHERE source_id = ? LIMIT 1", [source_id]))
