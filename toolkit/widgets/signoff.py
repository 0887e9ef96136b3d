"""Signing off many rows at once: the Browser's QA tab (the last night's images with their computed and final
grades) and the bar that signs off the checked rows of any tab in one batch (one transaction)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any, Protocol

import ipywidgets as w
import pandas as pd

from ..client import AsyncClient
from ..records import Night
from .grid import Grid
from .notes_box import SIGN_OFF_GRADES
from .paging import check_page_size
from .runner import Runner
from .table import checked_targets

QA_COLUMNS = ("id", "path", "type", "created_at", "grade", "final_grade", "signoff_by", "summary")
_IMAGE = ("image", "path")


def _muted(text: str) -> str:
    return f'<span style="color:#57606a">{html.escape(text)}</span>'


class Checkable(Protocol):
    grid: Grid

    def checked_targets(self) -> list[tuple[str, Any]]: ...

    def after_sign_off(self) -> None: ...


class QAView(w.VBox):  # type: ignore[misc]
    """The last night's images, graded: computed and final grade, who signed off. The night's rows stay in
    Python; the grid shows one page of them at a time."""

    def __init__(self, runner: Runner, on_select: Callable[[dict[str, Any]], None], size: int = 50) -> None:
        self.runner = runner
        self.on_select = on_select
        self.size = check_page_size(size)
        self.number = 0
        self.night: Night | None = None
        self.frame = pd.DataFrame()  # the whole night
        self.heading = w.HTML(_muted("loading the last night…"))
        self.prev_button = w.Button(description="◀ prev", layout=w.Layout(width="80px"))
        self.next_button = w.Button(description="next ▶", layout=w.Layout(width="80px"))
        self.prev_button.on_click(lambda _b: self.show_page(self.number - 1))
        self.next_button.on_click(lambda _b: self.show_page(self.number + 1))
        self.grid = Grid(visible=list(QA_COLUMNS), checkable=True)
        self.grid.add_class("contimg-qa-grid")
        self.grid.observe(lambda _c: self._open(self.grid.opened), names="open_count")
        super().__init__([self.heading, w.HBox([self.prev_button, self.next_button]), self.grid])
        self.add_class("contimg-qa-view")

    def reload(self) -> None:
        async def work(api: AsyncClient) -> tuple[Night, pd.DataFrame]:
            night = await api.last_night()
            return night, await api.qa.images(**night.bounds)

        def done(result: tuple[Night, pd.DataFrame]) -> None:
            self.night, self.frame = result
            self.show_page(min(self.number, self.pages - 1))

        def failed(message: str) -> None:
            self.heading.value = f'<span style="color:#cf222e">{html.escape(message)}</span>'

        self.runner.start(work, done, failed)

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.frame) // self.size))

    @property
    def page(self) -> pd.DataFrame:
        start = self.number * self.size
        return self.frame.iloc[start : start + self.size].reset_index(drop=True)

    def show_page(self, number: int) -> None:
        self.number = max(0, min(number, self.pages - 1))
        self.grid.show_frame(self.page, [c for c in QA_COLUMNS if c in self.frame])
        counts = self.frame["final_grade"].value_counts().to_dict() if len(self.frame) else {}
        graded = ", ".join(f"{n} {g}" for g, n in counts.items()) or "no images"
        title = self.night.title() if self.night is not None else ""
        self.heading.value = (
            f"<b>{html.escape(title)}</b> · final grades: {html.escape(graded)} · "
            f"page {self.number + 1} of {self.pages}"
        )
        self.prev_button.disabled = self.number == 0
        self.next_button.disabled = self.number >= self.pages - 1

    def _open(self, index: int) -> None:
        page = self.page
        if 0 <= index < len(page):
            self.on_select({str(k): v for k, v in page.iloc[index].to_dict().items()})

    def checked_targets(self) -> list[tuple[str, Any]]:
        return checked_targets(self.grid, self.page, _IMAGE)

    def after_sign_off(self) -> None:
        self.reload()  # the final grades changed


class SignOffBar(w.HBox):  # type: ignore[misc]
    """Sign off the checked rows of the tab in view, in one batch: all of them or none."""

    def __init__(
        self, runner: Runner, current: Callable[[], Checkable | None], after: Callable[[], None]
    ) -> None:
        self.runner = runner
        self.current = current
        self.after = after
        self.grade = w.Dropdown(options=list(SIGN_OFF_GRADES), layout=w.Layout(width="90px"))
        self.reason = w.Text(placeholder="reason (required)", layout=w.Layout(width="280px"))
        self.button = w.Button(
            description="sign off checked rows", layout=w.Layout(width="auto", min_width="max-content")
        )
        self.button.add_class("contimg-sign-off-checked")
        self.button.on_click(lambda _b: self.sign_off())
        self.message = w.HTML()
        self.message.add_class("contimg-sign-off-message")
        self.signed = 0
        super().__init__(
            [w.HTML("<b>checked rows</b>"), self.grade, self.reason, self.button, self.message],
            layout=w.Layout(flex_flow="row wrap", align_items="center"),
        )
        self.add_class("contimg-sign-off-bar")

    def sign_off(self) -> None:
        view = self.current()
        targets = view.checked_targets() if view is not None else []
        if not targets:
            self.message.value = _muted("check rows first (the box at the start of each row, or space)")
            return
        grade, reason = self.grade.value, self.reason.value

        async def work(api: AsyncClient) -> int:
            async with api.notes.batch() as batch:
                for target in targets:
                    batch.sign_off(target, grade, reason)
            return len(batch.events)

        def done(count: int) -> None:
            self.signed += count
            self.reason.value = ""
            kinds = {kind for kind, _ in targets}
            what = f"{kinds.pop()}s" if len(kinds) == 1 else "objects"
            self.message.value = (
                f'<span style="color:#1a7f37">signed off {count} {what} {html.escape(grade)} '
                "in one transaction</span>"
            )
            if view is not None:
                view.after_sign_off()
            self.after()

        def failed(message: str) -> None:
            self.message.value = f'<span style="color:#cf222e">{html.escape(message)}</span>'

        self.message.value = _muted("saving…")
        self.runner.start(work, done, failed)
