"""``NotesBox``: an object's comments, tags, sign-off (and a source's label) in its panel, with their history,
and the controls to add to them. Every write goes through ``client.notes`` (one transaction each); the box
then reads the object's notes again, so what it shows is what the notes database holds."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable, Coroutine
from typing import Any

import ipywidgets as w
import pandas as pd

from ..client import AsyncClient
from ..vocab import GRADES
from .runner import Runner
from .table import html_table

Target = tuple[str, Any]  # ("image", path), ("ms", path), ("job", run_id), ("source", source_id), ...
SIGN_OFF_GRADES = tuple(g for g in GRADES if g != "not assessed")
HISTORY_COLUMNS = ("created_at", "author", "action", "grade", "tag", "label", "text")
_GRADE_COLOURS = {"good": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e"}


def _muted(text: str) -> str:
    return f'<span style="color:#57606a">{html.escape(text)}</span>'


def summary_html(current: pd.DataFrame) -> str:
    """The sign-off in force, the tags, the label and the comments (newest first), from ``notes.list``."""

    def of(kind: str) -> pd.DataFrame:
        return current[current["kind"] == kind]

    parts: list[str] = []
    sign = of("sign_off")
    if len(sign):
        row = sign.iloc[0]
        colour = _GRADE_COLOURS.get(str(row["grade"]), "#57606a")
        parts.append(
            f'<div class="contimg-signoff"><b>signed off</b> <span style="background:{colour};color:white;'
            f'border-radius:4px;padding:0 6px">{html.escape(str(row["grade"]))}</span> by '
            f"{html.escape(str(row['author']))} on {row['created_at']:%Y-%m-%d %H:%M} UTC: "
            f"{html.escape(str(row['text']))}</div>"
        )
    else:
        parts.append(f'<div class="contimg-signoff">{_muted("not signed off")}</div>')
    tags = sorted(str(t) for t in of("tag")["tag"])
    chips = "".join(
        f'<span class="contimg-tag" style="background:#ddf4ff;border-radius:10px;padding:0 8px;'
        f'margin-right:4px">{html.escape(t)}</span>'
        for t in tags
    )
    parts.append(f"<div><b>tags</b> {chips or _muted('none')}</div>")
    label = of("label")
    if len(label):
        parts.append(
            f'<div class="contimg-label"><b>label</b> {html.escape(str(label["label"].iloc[0]))}</div>'
        )
    comments = of("comment")
    items = "".join(
        f"<li><b>{html.escape(str(r.author))}</b> {_muted(f'{r.created_at:%Y-%m-%d %H:%M}')}: "
        f"{html.escape(str(r.text))}</li>"
        for r in comments.itertuples()
    )
    parts.append(
        f'<div class="contimg-comments"><b>comments ({len(comments)})</b>'
        f'<ul style="margin:2px 0">{items or "<li>" + _muted("none") + "</li>"}</ul></div>'
    )
    return "".join(parts)


class NotesBox(w.VBox):  # type: ignore[misc]
    """The notes of one object: what is recorded, its history, and controls to comment, tag, sign off (and,
    for a source, label). ``labels`` are the labels offered (the client's ``note_labels``); ``on_write`` is
    called after each write."""

    def __init__(
        self,
        runner: Runner,
        target: Target,
        labels: tuple[str, ...] = (),
        on_write: Callable[[], None] | None = None,
    ) -> None:
        self.runner = runner
        self.target = target
        self.on_write = on_write  # the panel shows the grade that stands: it reloads it after a write
        self.current = w.HTML(_muted("loading notes…"))
        self.message = w.HTML()
        self.message.add_class("contimg-notes-message")
        self.history = w.HTML()
        self.history.add_class("contimg-history")
        history_box = w.Accordion(children=[self.history], titles=("history",), selected_index=None)

        self.comment_text = w.Textarea(placeholder="a comment", layout=w.Layout(width="320px", height="48px"))
        self.comment_button = self._button("comment", lambda: self._comment())
        self.tag_text = w.Text(placeholder="tag", layout=w.Layout(width="140px"))
        self.tag_button = self._button("add tag", lambda: self._tags(remove=False))
        self.untag_button = self._button("remove tag", lambda: self._tags(remove=True))
        self.grade = w.Dropdown(options=list(SIGN_OFF_GRADES), layout=w.Layout(width="90px"))
        self.reason = w.Text(placeholder="reason (required)", layout=w.Layout(width="240px"))
        self.sign_button = self._button("sign off", lambda: self._sign_off(clear=False))
        self.clear_button = self._button("clear sign-off", lambda: self._sign_off(clear=True))
        controls: list[w.Widget] = [
            w.HBox([self.comment_text, self.comment_button]),
            w.HBox([self.tag_text, self.tag_button, self.untag_button]),
            w.HBox([self.grade, self.reason, self.sign_button, self.clear_button]),
        ]
        if target[0] == "source" and labels:
            self.label = w.Dropdown(options=list(labels), layout=w.Layout(width="110px"))
            self.label_note = w.Text(placeholder="note (optional)", layout=w.Layout(width="240px"))
            self.label_button = self._button("label", lambda: self._label())
            controls.append(w.HBox([self.label, self.label_note, self.label_button]))
        self.writes = 0
        super().__init__([w.HTML("<b>notes</b>"), self.current, *controls, self.message, history_box])
        self.add_class("contimg-notes")
        self.refresh()

    def _button(self, description: str, action: Callable[[], None]) -> w.Button:
        # min-width: the panel is narrow, and a flex row would otherwise clip the label ("sign…")
        button = w.Button(description=description, layout=w.Layout(width="auto", min_width="max-content"))
        button.add_class(f"contimg-notes-{description.replace(' ', '-')}")
        button.on_click(lambda _b: action())
        return button

    # ------------------------------------------------------------------------------------- reading
    def refresh(self) -> None:
        async def work(api: AsyncClient) -> tuple[pd.DataFrame, pd.DataFrame]:
            return await asyncio.gather(api.notes.list(target=self.target), api.notes.history(self.target))

        def done(result: tuple[pd.DataFrame, pd.DataFrame]) -> None:
            current, history = result
            self.current.value = summary_html(current)
            columns = [c for c in HISTORY_COLUMNS if c in history]
            self.history.value = (
                html_table(history.iloc[::-1], columns) if len(history) else _muted("no changes yet")
            )

        self.runner.start(work, done, self._failed)

    # ------------------------------------------------------------------------------------- writing
    def _write(
        self,
        work: Callable[[AsyncClient], Coroutine[Any, Any, Any]],
        said: str,
        then: Callable[[], None] | None = None,
    ) -> None:
        # Widgets change in done() only: work may run on the blocking client's loop thread
        def done(_result: Any) -> None:
            self.writes += 1
            if then is not None:
                then()
            if self.on_write is not None:
                self.on_write()
            self.message.value = f'<span style="color:#1a7f37">{html.escape(said)}</span>'
            self.refresh()

        self.message.value = _muted("saving…")
        self.runner.start(work, done, self._failed)

    def _failed(self, message: str) -> None:
        self.message.value = f'<span style="color:#cf222e">{html.escape(message)}</span>'

    def _comment(self) -> None:
        text = self.comment_text.value

        async def work(api: AsyncClient) -> Any:
            return await api.notes.comment(self.target, text)

        self._write(work, "comment saved", then=lambda: setattr(self.comment_text, "value", ""))

    def _tags(self, *, remove: bool) -> None:
        tags = self.tag_text.value.replace(",", " ").split()

        async def work(api: AsyncClient) -> Any:
            call = api.notes.untag if remove else api.notes.tag
            return await call(self.target, *tags)

        self._write(
            work,
            f"{'removed' if remove else 'added'} {', '.join(tags)}",
            then=lambda: setattr(self.tag_text, "value", ""),
        )

    def _sign_off(self, *, clear: bool) -> None:
        grade, reason = self.grade.value, self.reason.value

        async def work(api: AsyncClient) -> Any:
            if clear:
                return await api.notes.clear_sign_off(self.target, reason)
            return await api.notes.sign_off(self.target, grade, reason)

        said = "sign-off cleared" if clear else f"signed off {grade}"
        self._write(work, said, then=lambda: setattr(self.reason, "value", ""))

    def _label(self) -> None:
        label, note = self.label.value, self.label_note.value.strip() or None

        async def work(api: AsyncClient) -> Any:
            return await api.notes.classify(self.target, label, note)

        self._write(work, f"labelled {label}")
