"""Calibration tables from the registry (or from the products database on newer sites)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import frames
from ..arguments import check_choices, check_number, check_text
from ..cache import cached
from ..db.base import Backend, Catalog
from ..db.connections import Connections
from ..errors import RecordNotFoundError
from ..records import CalTable, parse_json
from ..schema import TABLE_TYPES, Kind, kinds
from .filters import explain_empty
from .query import Select, select_columns

KINDS: dict[str, Kind] = kinds("caltables")
CAL_STATUSES = ("active", "retired", "failed")


def list_query(
    catalog: Catalog,
    *,
    set_name: str | None = None,
    table_type: str | list[str] | None = None,
    status: str | list[str] | None = None,
    valid_at_mjd: float | None = None,
) -> tuple[str, list[Any]]:
    q = Select(select_columns(catalog, "caltables", "c"), "caltables AS c")
    if set_name is not None:
        q.filter("c.set_name = ?", check_text(set_name, "set_name"))
    q.filter_in("c.table_type", check_choices(table_type, "table_type"))
    q.filter_in("c.status", check_choices(status, "status"))
    at = check_number(valid_at_mjd, "valid_at_mjd")
    if at is not None:
        q.filter("c.valid_start_mjd <= ? AND c.valid_end_mjd >= ?", at, at)
    q.order_by = "c.valid_start_mjd DESC, c.set_name, c.order_index, c.id"
    return q.build()


def applied_query(catalog: Catalog, ms_path: str, mid_mjd: float | None) -> tuple[str, list[Any]]:
    """Tables that could have been applied to an MS: valid at its mid time, or solved from it; not failed."""
    q = Select(select_columns(catalog, "caltables", "c"), "caltables AS c")
    if mid_mjd is None:
        q.filter("c.source_ms_path = ?", ms_path)
    else:
        q.filter(
            "(c.valid_start_mjd <= ? AND c.valid_end_mjd >= ?) OR c.source_ms_path = ?",
            mid_mjd,
            mid_mjd,
            ms_path,
        )
    q.filter("c.status IS NULL OR c.status <> 'failed'")
    # Newest set first: that is the one the pipeline's apply list uses when validity windows overlap.
    q.order_by = (
        "CASE WHEN c.status = 'active' THEN 0 ELSE 1 END, c.created_at DESC, c.set_name, c.order_index"
    )
    return q.build()


def caltable_from_row(row: dict[str, Any]) -> CalTable:
    table: CalTable = CalTable.from_row(
        row,
        solver_params=parse_json(row.get("solver_params")),
        quality_metrics=parse_json(row.get("quality_metrics")),
    )
    return table


def one_set_in_apply_order(frame: pd.DataFrame) -> tuple[CalTable, ...]:
    """The first set of the ordered candidates, its tables in ``order_index`` order."""
    if frame.empty:
        return ()
    chosen = frame[frame["set_name"] == frame["set_name"].iloc[0]].sort_values("order_index", kind="stable")
    return tuple(caltable_from_row(row) for row in frames.rows_as_dicts(chosen))


async def applied_tables(db: Backend, ms_path: str, mid_mjd: float | None) -> tuple[CalTable, ...]:
    sql, params = applied_query(db.catalog, ms_path, mid_mjd)
    return one_set_in_apply_order(await db.fetch_frame(sql, params, KINDS))


class CalTables:
    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    @cached("cal:list")
    async def list(
        self,
        *,
        set_name: str | None = None,
        table_type: str | list[str] | None = None,
        status: str | list[str] | None = None,
        valid_at_mjd: float | None = None,
    ) -> pd.DataFrame:
        """Calibration tables, newest validity window first, each set in apply order.

        ``valid_at_mjd`` keeps the tables whose validity window contains that MJD (the ones in force then).
        """
        db = await self._connections.require_calibration()
        sql, params = list_query(
            db.catalog, set_name=set_name, table_type=table_type, status=status, valid_at_mjd=valid_at_mjd
        )
        frame = await db.fetch_frame(sql, params, KINDS)
        if frame.empty:
            for column, value, valid in (
                ("table_type", table_type, TABLE_TYPES),
                ("status", status, CAL_STATUSES),
            ):
                if value is not None:
                    await explain_empty(db, "caltables", column, check_choices(value, column) or [], valid)
        return frame

    async def get(self, path: str) -> CalTable:
        """One calibration table by path, its JSON columns parsed."""
        db = await self._connections.require_calibration()
        q = Select(select_columns(db.catalog, "caltables", "c"), "caltables AS c")
        q.filter("c.path = ?", check_text(path, "path"))
        sql, params = q.build()
        frame = await db.fetch_frame(sql, params, KINDS)
        if frame.empty:
            raise RecordNotFoundError("calibration table", path)
        return caltable_from_row(frames.first_row(frame))
