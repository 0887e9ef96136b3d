"""``Browser(client)``: tabs of paged tables (images, MS, sources, jobs, cal tables) and a detail panel."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as w

from ..records import Record
from ..vocab import CAL_STATUSES, IMAGE_TYPES, JOB_STATUSES, MS_STAGES, MS_STATUSES, TABLE_TYPES
from .paging import check_page_size
from .panels import ImagePanel, Panel, make_panel
from .runner import AnyClient, Runner
from .signoff import Checkable, QAView, SignOffBar
from .table import Choice, TableSpec, TableView

# Each tab pages its client area (``client.<area>.page``) with the filters a user sets; sort labels map to
# the area's sort names.
SPECS: dict[str, TableSpec] = {
    "images": TableSpec(
        "Images",
        "images",
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
            "created": "created_at",
            "noise": "noise_jy",
            "dynamic range": "dynamic_range",
            "beam major": "beam_major_arcsec",
            "type": "type",
            "path": "path",
            "id": "id",
        },
        key_column="id",
        choices=(Choice("type", "type", IMAGE_TYPES),),
        sign_off=("image", "path"),
    ),
    "ms": TableSpec(
        "Measurement sets",
        "ms",
        shown=["path", "stage", "status", "mid_mjd", "cal_applied", "qa_grade", "run_id"],
        sorts={"observed": "mid_mjd", "path": "path", "stage": "stage", "status": "status"},
        key_column="path",
        choices=(Choice("stage", "stage", MS_STAGES), Choice("status", "status", MS_STATUSES)),
        sign_off=("ms", "path"),
    ),
    "sources": TableSpec(
        "Sources",
        "sources",
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
        sorts={"source id": "source_id"},
        key_column="source_id",
        search_label="id contains",
        dates=False,
        label_column="source_id",
        descending=False,
    ),
    "jobs": TableSpec(
        "Jobs",
        "jobs",
        shown=["id", "run_id", "type", "status", "ms_path", "created_at", "duration_s"],
        sorts={"created": "created_at", "id": "id", "status": "status"},
        key_column="id",
        choices=(Choice("status", "status", JOB_STATUSES),),
        search_label="MS contains",
        label_column="run_id",
        sign_off=("job", "run_id"),
    ),
    "cal": TableSpec(
        "Cal tables",
        "cal",
        shown=["id", "set_name", "table_type", "status", "valid_start_mjd", "valid_end_mjd", "path"],
        sorts={"valid from": "valid_start_mjd", "set": "set_name", "id": "id"},
        key_column="id",
        choices=(Choice("table_type", "type", TABLE_TYPES), Choice("status", "status", CAL_STATUSES)),
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
    """Tabs of paged tables; clicking a row (or Enter on it) opens its panel beside the table, and
    ``browser.selected`` is that row's record (an ``Image``, ``MeasurementSet``, ``Source``, ``Job`` or
    ``CalTable``; None while nothing is open)."""

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
        self.qa_view = QAView(
            self.runner, on_select=lambda row: self.show("image", row["path"]), size=page_size
        )
        self.tabs = w.Tab(children=[*self.views.values(), self.qa_view])
        for i, spec in enumerate(SPECS.values()):
            self.tabs.set_title(i, spec.title)
        self.tabs.set_title(len(SPECS), "QA · last night")
        self.tabs.observe(self._tab_changed, names="selected_index")
        self.sign_off_bar = SignOffBar(self.runner, current=self._checkable, after=self._signed_off)
        # The detail takes room only while something is open; the table has the width otherwise
        self.detail = w.VBox(
            layout=w.Layout(width="42%", border="1px solid #d0d7de", padding="4px", display="none")
        )
        self.detail.add_class("contimg-detail")
        # min-width 0: a flex item may then shrink below its content, and the grid scrolls sideways instead
        # of running under the detail
        self.tabs.layout = w.Layout(width="100%", min_width="0")
        self.table_box = w.VBox(
            [self.tabs, self.sign_off_bar], layout=w.Layout(width="100%", min_width="0", overflow="hidden")
        )
        self.panel: Panel | None = None
        self.children = (w.HBox([self.table_box, self.detail]),)
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
            self.panel.on_close = None
            self.panel.close()
        self.panel = make_panel(self.client, kind, ident, opener=self.show)
        self.panel.on_close = self._collapse
        self.detail.children = (self.panel,)
        self.detail.layout.display = "flex"
        self.table_box.layout.width = "58%"

    def _tab_changed(self, _change: Mapping[str, Any]) -> None:
        if self.tabs.selected_index == len(SPECS) and self.qa_view.night is None:
            self.qa_view.reload()  # read when first looked at

    def _checkable(self) -> Checkable | None:
        index = self.tabs.selected_index
        children = self.tabs.children
        if index is None or not 0 <= index < len(children):
            return None
        child: Checkable = children[index]
        return child

    def _signed_off(self) -> None:
        """The open panel shows the new sign-off if it was among the rows."""
        panel = self.panel
        notes = getattr(panel, "notes", None)
        if notes is not None:
            notes.refresh()
        if isinstance(panel, ImagePanel) and panel.record is not None:
            panel.reload_qa()

    def _collapse(self) -> None:
        self.panel = None
        self.detail.children = ()
        self.detail.layout.display = "none"
        self.table_box.layout.width = "100%"

    @property
    def selected(self) -> Record | None:
        """The record open in the detail (None while nothing is open or it is still loading)."""
        return None if self.panel is None else self.panel.record

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
