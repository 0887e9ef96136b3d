"""A paged table view: filters, sort, page size, keyset paging; one page of rows in the browser at a time."""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as w
import pandas as pd

from ..client import AsyncClient
from ..domains.paging import Cursor, Page
from .grid import Grid
from .paging import PAGE_SIZES, PageState, check_page_size
from .runner import Runner

# Columns never offered in a table: long JSON and log text (the record's panel shows them)
HIDDEN_COLUMNS = frozenset({"pipeline_config", "artifacts", "inline_log", "logs", "metadata", "params"})


@dataclass(frozen=True)
class Choice:
    """A dropdown filter: the area's filter name, its label, and the values offered."""

    name: str
    label: str
    options: Sequence[str]


@dataclass(frozen=True)
class TableSpec:
    """Everything one tab needs: the client area its pages come from and what a user can do with them."""

    title: str
    area: str  # the client attribute whose ``page`` call serves this tab: "images", "ms", ...
    shown: Sequence[str]  # columns shown in the table
    sorts: Mapping[str, str]  # label -> the area's sort name (the first is the default)
    key_column: str  # the frame column naming a row (what its panel opens)
    choices: Sequence[Choice] = ()
    search_label: str = "path contains"
    dates: bool = True
    label_column: str = "path"
    descending: bool = True  # the first order shown (newest first for most tabs)
    sign_off: tuple[str, str] | None = None  # (target kind, key column): rows can be checked and signed off


def html_table(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """The page as an HTML table (escaped; floats shortened; grades coloured)."""
    colours = {"good": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e"}

    def cell(column: str, value: Any) -> str:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return '<td style="padding:1px 6px;color:#8c959f">—</td>'
        text = f"{value:.5g}" if isinstance(value, float) else str(value)
        graded = column.endswith("grade") and text in colours
        style = f"padding:1px 6px;color:{colours[text]};font-weight:600" if graded else "padding:1px 6px"
        return f'<td style="{style}">{html.escape(text)}</td>'

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(cell(c, v) for c, v in zip(columns, row, strict=True)) + "</tr>"
        for row in frame[list(columns)].itertuples(index=False, name=None)
    )
    return (
        '<div style="overflow:auto;max-height:480px"><table class="contimg-table" style="border-collapse:collapse;font-size:12px">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def checked_targets(
    grid: Grid, frame: pd.DataFrame, sign_off: tuple[str, str] | None
) -> list[tuple[str, Any]]:
    if sign_off is None:
        return []
    kind, column = sign_off
    return [(kind, frame[column].iloc[i]) for i in grid.checked if 0 <= i < len(frame)]


class TableView(w.VBox):  # type: ignore[misc]
    """One tab of the browser. ``on_select(row)`` is called with the chosen row as a dict."""

    def __init__(
        self, runner: Runner, spec: TableSpec, on_select: Callable[[dict[str, Any]], None], size: int = 50
    ) -> None:
        self.runner = runner
        self.spec = spec
        self.on_select = on_select
        self.state = PageState(size=check_page_size(size))
        self.frame = pd.DataFrame()
        self.page: Page | None = None
        self._token = 0  # only the newest request may update the view
        self._holding = False
        self.choice_widgets = {
            c.name: w.Dropdown(description=c.label, options=[("any", "")] + [(o, o) for o in c.options])
            for c in spec.choices
        }
        self.search = w.Text(description=spec.search_label, continuous_update=False)
        self.since = w.Text(
            description="since",
            placeholder="2025-10-05T18:00",
            continuous_update=False,
            layout=w.Layout(width="220px"),
        )
        self.until = w.Text(
            description="until",
            placeholder="2025-10-06",
            continuous_update=False,
            layout=w.Layout(width="220px"),
        )
        self.sort = w.Dropdown(description="sort by", options=list(spec.sorts))
        self.descending = w.ToggleButton(
            value=spec.descending, description="descending", icon="sort-amount-desc"
        )
        self.page_size = w.Dropdown(
            description="rows",
            options=list(PAGE_SIZES),
            value=self.state.size,
            layout=w.Layout(width="150px"),
        )
        self.first_button = w.Button(description="« first", layout=w.Layout(width="80px"))
        self.prev_button = w.Button(description="◀ prev", layout=w.Layout(width="80px"))
        self.next_button = w.Button(description="next ▶", layout=w.Layout(width="80px"))
        self.last_button = w.Button(description="last »", layout=w.Layout(width="80px"))
        self.goto_box = w.BoundedIntText(
            value=1, min=1, max=10**9, description="page", layout=w.Layout(width="160px")
        )
        self.goto_button = w.Button(description="go", layout=w.Layout(width="50px"))
        self.goto_button.on_click(lambda _b: self.goto(int(self.goto_box.value) - 1))
        self.label = w.Label(value="loading…")
        self.message = w.HTML()
        self.grid = Grid(
            visible=list(spec.shown),
            sortable=sorted(set(spec.sorts.values())),
            checkable=spec.sign_off is not None,
        )
        self.grid.add_class("contimg-page")
        self._sync_grid_sort()
        self.grid.observe(self._opened, names="open_count")
        self.grid.observe(self._header_sort, names=["sort_by", "descending"])
        for control in (
            *self.choice_widgets.values(),
            self.search,
            self.since,
            self.until,
            self.sort,
            self.descending,
            self.page_size,
        ):
            control.observe(lambda _change: self.reload(), names="value")
        self.first_button.on_click(lambda _b: self.reload())
        self.next_button.on_click(lambda _b: self.next_page())
        self.prev_button.on_click(lambda _b: self.previous_page())
        self.last_button.on_click(lambda _b: self.last_page())
        wrap = w.Layout(flex_flow="row wrap")  # controls wrap when the detail narrows the table
        filters = [*self.choice_widgets.values(), self.search] + (
            [self.since, self.until] if spec.dates else []
        )
        super().__init__(
            [
                w.HBox(filters, layout=wrap),
                w.HBox([self.sort, self.descending, self.page_size], layout=wrap),
                w.HBox(
                    [
                        self.first_button,
                        self.prev_button,
                        self.next_button,
                        self.last_button,
                        self.goto_box,
                        self.goto_button,
                        self.label,
                    ],
                    layout=wrap,
                ),
                self.message,
                self.grid,
            ]
        )
        self.add_class("contimg-table-view")

    # ----------------------------------------------------------------------------------- filters
    def filter_values(self) -> dict[str, Any]:
        """The area's filters as set in the controls (unset ones are None)."""
        values: dict[str, Any] = {name: dd.value or None for name, dd in self.choice_widgets.items()}
        values["search"] = self.search.value.strip() or None
        if self.spec.dates:
            values["since"] = self.since.value.strip() or None
            values["until"] = self.until.value.strip() or None
        return values

    # ------------------------------------------------------------------------------------ paging
    def reload(self) -> None:
        """Back to page 1 with the current filters, sort and size; recount."""
        if self._holding:
            return
        self._sync_grid_sort()
        self.state = PageState(size=int(self.page_size.value))
        self._load(number=0, count=True)

    @contextlib.contextmanager
    def hold_reload(self) -> Iterator[None]:
        """Change several controls and reload once, after."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False

    def next_page(self) -> None:
        if self.page is not None and self.page.next is not None:
            self._load(after=self.page.next, number=self.state.number + 1)

    def previous_page(self) -> None:
        if self.page is not None and self.page.previous is not None and self.state.number > 0:
            self._load(before=self.page.previous, number=self.state.number - 1)

    def last_page(self) -> None:
        self._load(last=True)

    def goto(self, number: int) -> None:
        """Page ``number`` (0-based), found by an index walk and then read by keyset."""
        number = max(0, number)
        self._load(jump=number + 1, number=number)

    def _load(
        self,
        *,
        after: Cursor | None = None,
        before: Cursor | None = None,
        last: bool = False,
        jump: int | None = None,
        number: int = 0,
        count: bool = False,
    ) -> None:
        self._token += 1
        token = self._token
        self.message.value = '<span style="color:#57606a">loading…</span>'
        size = self.state.size
        spec = self.spec
        filters = self.filter_values()
        sort = spec.sorts[self.sort.value]
        descending = bool(self.descending.value)

        async def work(api: AsyncClient) -> Page:
            area = getattr(api, spec.area)
            page: Page = await area.page(
                filters, sort=sort, descending=descending, after=after, before=before, number=jump,
                last=last, size=size, count=count,
            )  # fmt: skip
            return page

        def done(page: Page) -> None:
            if token != self._token:
                return
            if page.count is not None:
                self.state.count, self.state.capped = page.count, page.capped
            if last and self.state.count is not None and not self.state.capped:
                shown = max(0, (self.state.count - 1) // size)
            else:
                shown = number
            self._show(page, shown)

        def failed(message: str) -> None:
            if token == self._token:
                self.message.value = f'<span style="color:#cf222e">{html.escape(message)}</span>'

        self.runner.start(work, done, failed)

    def _show(self, page: Page, number: int) -> None:
        self.page = page
        self.frame = frame = page.rows
        self.state.number = number
        self.message.value = (
            "" if len(frame) else '<span style="color:#57606a">no rows match these filters</span>'
        )
        self.grid.show_frame(frame, self.columns_offered(frame))
        self.label.value = self.state.label()
        self.prev_button.disabled = page.previous is None
        self.next_button.disabled = page.next is None

    def columns_offered(self, frame: pd.DataFrame) -> list[str]:
        """The spec's columns first (shown at the start), then the page's others (for the column menu)."""
        present = [c for c in self.spec.shown if c in frame]
        return present + [str(c) for c in frame.columns if c not in present and c not in HIDDEN_COLUMNS]

    def checked_targets(self) -> list[tuple[str, Any]]:
        """The checked rows of this page as notes targets (none where the tab has no sign-off)."""
        return checked_targets(self.grid, self.frame, self.spec.sign_off)

    def after_sign_off(self) -> None:
        self.grid.checked = []

    def open_row(self, index: int) -> None:
        """Open the page's row ``index`` (what a click or Enter on it does)."""
        if 0 <= index < len(self.frame):
            self.grid.selected = index
            self.on_select({str(k): v for k, v in self.frame.iloc[index].to_dict().items()})

    def _opened(self, _change: Mapping[str, Any]) -> None:
        self.open_row(self.grid.opened)

    # ----------------------------------------------------------------------------------- sorting
    def _sync_grid_sort(self) -> None:
        with self.grid.hold_trait_notifications():
            self.grid.sort_by = self.spec.sorts[self.sort.value]
            self.grid.descending = bool(self.descending.value)

    def _header_sort(self, _change: Mapping[str, Any]) -> None:
        """A header was clicked: the sort controls take its column and direction (and reload)."""
        labels = {name: label for label, name in self.spec.sorts.items()}
        label = labels.get(self.grid.sort_by)
        if label is None:  # not a column the area sorts on: the header goes back to the real order
            self._sync_grid_sort()
            return
        if (label, self.grid.descending) == (self.sort.value, self.descending.value):
            return  # the controls already say so (they set the header themselves)
        with self.hold_reload():
            self.sort.value = label
            self.descending.value = bool(self.grid.descending)
        self.reload()
