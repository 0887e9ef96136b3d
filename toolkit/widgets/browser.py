"""``Browser(client)``: tabs of paged tables (images, MS, sources, jobs, cal tables) and a detail panel."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as w

from ..arguments import to_mjd, to_unix
from ..client import AsyncClient
from ..db.base import Backend
from ..domains import cal as cal_domain
from ..domains import images as images_domain
from ..domains import jobs as jobs_domain
from ..domains import ms as ms_domain
from ..domains import sources as sources_domain
from ..domains.query import select_columns
from ..schema import MS_STAGES, TABLE_TYPES
from .paging import TableQuery, check_page_size, like_pattern
from .panels import Panel, make_panel
from .runner import AnyClient, Runner
from .table import Choice, TableSpec, TableView

ESCAPE = "ESCAPE '\\'"


async def _products(api: AsyncClient) -> Backend:
    return await api._connections.products()


async def _calibration(api: AsyncClient) -> Backend:
    return await api._connections.require_calibration()


def _sqlite_nulls(db: Backend) -> bool:
    return db.catalog.dialect.name != "sqlite"


def _with_filters(
    q: TableQuery,
    values: Mapping[str, Any],
    *,
    search: str,
    choices: Mapping[str, str],
    time: str | None,
    mjd: bool = False,
    placeholder: str = "?",
) -> TableQuery:
    for name, column in choices.items():
        if values.get(name):
            q = q.filtered(f"{column} = ?", values[name])
    if values.get("search"):
        q = q.filtered(f"{search} LIKE ? {ESCAPE}", like_pattern(values["search"]))
    if time is not None:
        convert = to_mjd if mjd else to_unix
        if values.get("since"):
            q = q.filtered(f"{time} >= {placeholder}", convert(values["since"], "since"))
        if values.get("until"):
            q = q.filtered(f"{time} <= {placeholder}", convert(values["until"], "until"))
    return q


def _images(db: Backend, values: Mapping[str, Any]) -> TableQuery:
    q = TableQuery(
        images_domain.image_select(db.catalog),
        "images AS i LEFT JOIN ms_index AS m ON m.path = i.ms_path",
        key="i.id",
        sort="i.created_at",
        count_source="images AS i",
        explicit_nulls=_sqlite_nulls(db),
    )
    stamp = db.catalog.time_placeholder("images", "created_at")
    return _with_filters(
        q, values, search="i.path", choices={"type": "i.type"}, time="i.created_at", placeholder=stamp
    )


def _ms(db: Backend, values: Mapping[str, Any]) -> TableQuery:
    q = TableQuery(
        ms_domain.ms_select(db.catalog),
        "ms_index AS m",
        key="m.path",
        sort="m.mid_mjd",
        explicit_nulls=_sqlite_nulls(db),
    )
    return _with_filters(
        q,
        values,
        search="m.path",
        choices={"stage": "m.stage", "status": "m.status"},
        time="m.mid_mjd",
        mjd=True,
    )


def _jobs(db: Backend, values: Mapping[str, Any]) -> TableQuery:
    columns, source, _ = jobs_domain.job_select(db.catalog)
    q = TableQuery(columns, source, key="j.id", sort="j.created_at", explicit_nulls=_sqlite_nulls(db))
    stamp = db.catalog.time_placeholder("jobs", "created_at")
    return _with_filters(
        q, values, search="j.ms_path", choices={"status": "j.status"}, time="j.created_at", placeholder=stamp
    )


def _sources(db: Backend, values: Mapping[str, Any]) -> TableQuery:
    q = TableQuery(
        sources_domain.SOURCE_COLUMNS,
        "photometry AS p",
        key="p.source_id",
        sort="p.source_id",
        descending=False,
        group_by="p.source_id",
        where=("p.source_id IS NOT NULL",),
    )
    return _with_filters(q, values, search="p.source_id", choices={}, time=None)


def _cal(db: Backend, values: Mapping[str, Any]) -> TableQuery:
    q = TableQuery(
        select_columns(db.catalog, "caltables", "c"),
        "caltables AS c",
        key="c.id",
        sort="c.valid_start_mjd",
        explicit_nulls=_sqlite_nulls(db),
    )
    return _with_filters(
        q,
        values,
        search="c.set_name",
        choices={"table_type": "c.table_type", "status": "c.status"},
        time=None,
    )


SPECS: dict[str, TableSpec] = {
    "images": TableSpec(
        "Images",
        _products,
        _images,
        images_domain.KINDS,
        shown=[
            "id",
            "path",
            "type",
            "created_at",
            "noise_jy",
            "beam_major_arcsec",
            "dynamic_range",
            "qa_grade",
        ],
        sorts={
            "created": "i.created_at",
            "noise": "i.noise_jy",
            "dynamic range": "i.dynamic_range",
            "beam major": "i.beam_major_arcsec",
            "type": "i.type",
            "path": "i.path",
            "id": "i.id",
        },
        key_column="id",
        choices=(Choice("type", "type", ("image", "pbcor", "residual", "model", "mosaic")),),
        post=images_domain.fill_run_ids,
    ),
    "ms": TableSpec(
        "Measurement sets",
        _products,
        _ms,
        ms_domain.KINDS,
        shown=["path", "stage", "status", "mid_mjd", "cal_applied", "qa_grade", "run_id"],
        sorts={"observed": "m.mid_mjd", "path": "m.path", "stage": "m.stage", "status": "m.status"},
        key_column="path",
        choices=(
            Choice("stage", "stage", MS_STAGES),
            Choice("status", "status", ("pending", "in_progress", "completed", "failed")),
        ),
        post=ms_domain.fill_ms_run_ids,
    ),
    "sources": TableSpec(
        "Sources",
        _products,
        _sources,
        sources_domain.SOURCE_KINDS,
        shown=[
            "source_id",
            "ra_deg",
            "dec_deg",
            "n_measurements",
            "first_mjd",
            "last_mjd",
            "mean_flux_jy",
            "max_flux_jy",
        ],
        # Only the source id: ordering by an aggregate would aggregate every photometry row for each page.
        sorts={"source id": "p.source_id"},
        key_column="source_id",
        search_label="id contains",
        dates=False,
        label_column="source_id",
        descending=False,
    ),
    "jobs": TableSpec(
        "Jobs",
        _products,
        _jobs,
        jobs_domain.KINDS,
        shown=["id", "run_id", "type", "status", "ms_path", "created_at", "duration_s"],
        sorts={"created": "j.created_at", "id": "j.id", "status": "j.status"},
        key_column="id",
        choices=(Choice("status", "status", jobs_domain.JOB_STATUSES),),
        search_label="MS contains",
        post=jobs_domain.add_job_columns,
        label_column="run_id",
    ),
    "cal": TableSpec(
        "Cal tables",
        _calibration,
        _cal,
        cal_domain.KINDS,
        shown=["id", "set_name", "table_type", "status", "valid_start_mjd", "valid_end_mjd", "path"],
        sorts={"valid from": "c.valid_start_mjd", "set": "c.set_name", "id": "c.id"},
        key_column="id",
        choices=(
            Choice("table_type", "type", TABLE_TYPES),
            Choice("status", "status", ("active", "retired", "failed")),
        ),
        search_label="set contains",
        dates=False,
    ),
}
_OPEN = {
    "images": ("image", "id"),
    "ms": ("ms", "path"),
    "sources": ("source", "source_id"),
    "jobs": ("job", "run_id"),
    "cal": ("cal", "path"),
}


class Browser(w.VBox):  # type: ignore[misc]
    """Tabs of paged tables; choosing a row opens its panel on the right."""

    def __init__(self, client: AnyClient, *, page_size: int = 50) -> None:
        # The widget is complete before anything can raise: a half-built widget fails in its __del__.
        super().__init__()
        self.add_class("contimg-browser")
        check_page_size(page_size)
        self.client = client
        self.runner = Runner(client)
        self.views = {
            name: TableView(self.runner, spec, on_select=self._selector(name), size=page_size)
            for name, spec in SPECS.items()
        }
        self.tabs = w.Tab(children=list(self.views.values()))
        for i, spec in enumerate(SPECS.values()):
            self.tabs.set_title(i, spec.title)
        self.detail = w.VBox(layout=w.Layout(width="45%", border="1px solid #d0d7de", padding="4px"))
        self.detail.add_class("contimg-detail")
        self.panel: Panel | None = None
        self.children = (w.HBox([w.Box([self.tabs], layout=w.Layout(width="55%")), self.detail]),)
        for view in self.views.values():
            view.reload()

    def _selector(self, tab: str) -> Callable[[dict[str, Any]], None]:
        def select(row: dict[str, Any]) -> None:
            self.select(tab, row)

        return select

    def select(self, tab: str, row: Mapping[str, Any]) -> None:
        kind, column = _OPEN[tab]
        ident = row[column]
        if tab == "images":
            ident = int(ident)
        self.show(kind, ident)

    def show(self, kind: str, ident: Any) -> None:
        if self.panel is not None:
            self.panel.close()
        self.panel = make_panel(self.client, kind, ident, opener=self.show)
        self.detail.children = (self.panel,)

    async def settled(self) -> None:
        await self.runner.settled()
        if self.panel is not None:
            await self.panel.settled()

    def close(self) -> None:
        runner = getattr(self, "runner", None)  # also called by __del__ on a Browser whose __init__ raised
        if runner is not None:
            runner.close()
        panel = getattr(self, "panel", None)
        if panel is not None:
            panel.close()
        super().close()
