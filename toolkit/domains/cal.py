"""Calibration tables from the registry (or from the products database on newer sites)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .. import frames
from ..arguments import check_choices, check_number, check_text
from ..cache import cached
from ..db.base import Backend, Catalog
from ..db.connections import Connections
from ..errors import RecordNotFoundError
from ..records import CalTable, parse_json
from ..schema import Kind, kinds
from ..vocab import CAL_STATUSES, TABLE_TYPES
from .filters import Filters, Vocabulary
from .paging import Cursor, Keyset, Listing, Page
from .query import Select, select_columns

KINDS: dict[str, Kind] = kinds("caltables")


@dataclass(frozen=True)
class CalFilters(Filters):
    """What ``cal.list``/``cal.page`` keep.

    ``set_name``: one set; ``table_type``/``status``: one value or a list; ``valid_at_mjd``: tables whose
    validity window contains that MJD (the ones in force then); ``source_ms_path``: the tables solved from
    that MS; ``search``: the set name contains this text.
    """

    set_name: str | None = None
    table_type: str | list[str] | None = None
    status: str | list[str] | None = None
    valid_at_mjd: float | None = None
    search: str | None = None
    source_ms_path: str | None = None

    vocabularies = (
        Vocabulary("table_type", "caltables", "table_type", TABLE_TYPES),
        Vocabulary("status", "caltables", "status", CAL_STATUSES),
    )

    def apply(self, q: Select, catalog: Catalog) -> Select:
        if self.set_name is not None:
            q.filter("c.set_name = ?", check_text(self.set_name, "set_name"))
        q.filter_in("c.table_type", check_choices(self.table_type, "table_type"))
        q.filter_in("c.status", check_choices(self.status, "status"))
        at = check_number(self.valid_at_mjd, "valid_at_mjd")
        if at is not None:
            q.filter("c.valid_start_mjd <= ? AND c.valid_end_mjd >= ?", at, at)
        if self.source_ms_path is not None:
            q.filter("c.source_ms_path = ?", check_text(self.source_ms_path, "source_ms_path"))
        return q.filter_contains("c.set_name", self.search)


def select(catalog: Catalog) -> Select:
    return Select(select_columns(catalog, "caltables", "c"), "caltables AS c")


LISTING = Listing(
    Keyset(
        key="c.id",
        key_column="id",
        table="caltables",
        sorts={"valid_start_mjd": "c.valid_start_mjd", "set_name": "c.set_name", "id": "c.id"},
    ),
    CalFilters,
    select,
    KINDS,
    order_by="c.valid_start_mjd DESC, c.set_name, c.order_index, c.id",
)


def applied_select(catalog: Catalog, ms_path: str, mid_mjd: float | None) -> Select:
    """Tables that could have been applied to an MS: valid at its mid time, or solved from it; not failed."""
    q = select(catalog)
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
    return q


def caltable_from_row(row: Mapping[str, Any]) -> CalTable:
    """A table with its JSON columns parsed."""
    return CalTable.from_row(
        row,
        solver_params=parse_json(row.get("solver_params")),
        quality_metrics=parse_json(row.get("quality_metrics")),
    )


def one_set_in_apply_order(frame: pd.DataFrame) -> tuple[CalTable, ...]:
    """The first set of the ordered candidates, its tables in ``order_index`` order."""
    if frame.empty:
        return ()
    chosen = frame[frame["set_name"] == frame["set_name"].iloc[0]].sort_values("order_index", kind="stable")
    return tuple(caltable_from_row(row) for row in frames.rows_as_dicts(chosen))


async def applied_tables(db: Backend, ms_path: str, mid_mjd: float | None) -> tuple[CalTable, ...]:
    sql, params = applied_select(db.catalog, ms_path, mid_mjd).build()
    return one_set_in_apply_order(await db.fetch_frame(sql, params, KINDS))


async def tables_for_ms(
    connections: Connections, ms_path: str | None, mid_mjd: float | None
) -> tuple[CalTable, ...]:
    """The registry's set for an MS in apply order (what ``ms.get`` shows); () without an MS or a registry."""
    cal = await connections.calibration()
    if ms_path is None or cal is None:
        return ()
    return await applied_tables(cal, ms_path, mid_mjd)


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
        search: str | None = None,
        source_ms_path: str | None = None,
    ) -> pd.DataFrame:
        """Calibration tables, newest validity window first, each set in apply order.

        ``valid_at_mjd`` keeps the tables whose validity window contains that MJD (the ones in force then);
        ``search`` keeps sets whose name contains that text; ``source_ms_path`` keeps the tables solved from
        that MS (the pipeline API's calibrator matches of an MS).
        """
        filters = CalFilters(
            set_name=set_name,
            table_type=table_type,
            status=status,
            valid_at_mjd=valid_at_mjd,
            search=search,
            source_ms_path=source_ms_path,
        )
        db = await self._connections.require_calibration()
        sql, params = LISTING.list_select(db.catalog, filters).build()
        frame = await db.fetch_frame(sql, params, KINDS)
        if frame.empty:
            await filters.explain(db)
        return frame

    async def page(
        self,
        filters: CalFilters | Mapping[str, Any] | None = None,
        *,
        sort: str = "valid_start_mjd",
        descending: bool = True,
        after: Cursor | None = None,
        before: Cursor | None = None,
        number: int | None = None,
        last: bool = False,
        size: int = 50,
        count: bool = True,
    ) -> Page:
        """One page of calibration tables, newest validity window first by default, with :meth:`list`'s
        filters (a ``CalFilters`` or a dict such as ``{"status": "active"}``).

        Paging as in ``images.page``; ``sort`` is valid_start_mjd, set_name or id.
        """
        db = await self._connections.require_calibration()
        return await LISTING.page(
            db, filters, sort=sort, descending=descending, after=after, before=before, number=number,
            last=last, size=size, count=count,
        )  # fmt: skip

    async def get(self, path: str) -> CalTable:
        """One calibration table by path, its JSON columns parsed."""
        db = await self._connections.require_calibration()
        q = select(db.catalog).filter("c.path = ?", check_text(path, "path"))
        sql, params = q.build()
        frame = await db.fetch_frame(sql, params, KINDS)
        if frame.empty:
            raise RecordNotFoundError("calibration table", path)
        return caltable_from_row(frames.first_row(frame))
