"""``Grid``: one page of rows as a table that reads like a table, in the browser (anywidget; its JavaScript is in
this module and anywidget's own front end is installed with the package, so nothing comes from the internet).

One row per line; file names short, with the full path on hover; numbers at a sensible precision with the
units in the headers; grades coloured; the header stays visible. Clicking a sortable header asks Python for
that order (``sort_by``/``descending``: the server sorts, over keyset pages); clicking a row, or Enter on
the row the arrow keys (or j/k) moved to, opens it (``opened``, with ``open_count`` counting the openings).
The columns shown are ``visible``, chosen in the grid's column menu. Cell text is made here, in Python
(``display_cells``, pure), so the browser only lays it out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

import anywidget
import pandas as pd
import traitlets

MAX_CELL = 120  # characters shown in a cell; the rest is in its hover text
MAX_TITLE = 2_000  # characters of hover text


@dataclass(frozen=True)
class ColumnFormat:
    """How a column is shown: its header, unit, the factor from the stored unit, and decimals."""

    header: str
    unit: str = ""
    scale: float = 1.0
    decimals: int | None = None
    path: bool = False  # show the file name; the full path on hover


FORMATS: dict[str, ColumnFormat] = {
    "path": ColumnFormat("file", path=True),
    "ms_path": ColumnFormat("MS", path=True),
    "image_path": ColumnFormat("image", path=True),
    "created_at": ColumnFormat("created", "UTC"),
    "noise_jy": ColumnFormat("noise", "mJy", 1e3, 3),
    "rms_noise_jy": ColumnFormat("rms noise", "mJy", 1e3, 3),
    "beam_major_arcsec": ColumnFormat("beam maj", "arcsec", decimals=1),
    "beam_minor_arcsec": ColumnFormat("beam min", "arcsec", decimals=1),
    "beam_pa_deg": ColumnFormat("beam PA", "deg", decimals=1),
    "dynamic_range": ColumnFormat("dyn. range", decimals=0),
    "qa_grade": ColumnFormat("grade"),
    "mid_mjd": ColumnFormat("mid", "MJD", decimals=5),
    "start_mjd": ColumnFormat("start", "MJD", decimals=5),
    "end_mjd": ColumnFormat("end", "MJD", decimals=5),
    "first_mjd": ColumnFormat("first", "MJD", decimals=4),
    "last_mjd": ColumnFormat("last", "MJD", decimals=4),
    "valid_start_mjd": ColumnFormat("valid from", "MJD", decimals=4),
    "valid_end_mjd": ColumnFormat("valid to", "MJD", decimals=4),
    "ra_deg": ColumnFormat("RA", "deg", decimals=5),
    "dec_deg": ColumnFormat("Dec", "deg", decimals=5),
    "mean_flux_jy": ColumnFormat("mean flux", "mJy", 1e3, 2),
    "max_flux_jy": ColumnFormat("max flux", "mJy", 1e3, 2),
    "flux_jy": ColumnFormat("flux", "mJy", 1e3, 2),
    "nvss_flux_mjy": ColumnFormat("NVSS flux", "mJy", decimals=1),
    "n_measurements": ColumnFormat("n"),
    "duration_s": ColumnFormat("duration", "s", decimals=0),
    "n_comments": ColumnFormat("comments"),
    "final_grade": ColumnFormat("final grade"),
    "signoff_grade": ColumnFormat("signed off"),
    "signoff_by": ColumnFormat("signed off by"),
    "signoff_at": ColumnFormat("signed off at", "UTC"),
    "signoff_reason": ColumnFormat("reason"),
}


def column_format(name: str) -> ColumnFormat:
    return FORMATS.get(name, ColumnFormat(name))


def display_columns(names: Sequence[str], numeric: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The grid's header cells: ``name`` (the frame column), ``header``, ``unit``, and ``numeric`` (those
    right-aligned, so digits line up)."""
    return [
        {"name": n, "header": column_format(n).header, "unit": column_format(n).unit, "numeric": n in numeric}
        for n in names
    ]


def _number(value: float, fmt: ColumnFormat) -> str:
    scaled = value * fmt.scale
    if not math.isfinite(scaled):
        return str(scaled)
    if fmt.decimals is not None:
        return f"{scaled:,.{fmt.decimals}f}" if abs(scaled) >= 1e4 else f"{scaled:.{fmt.decimals}f}"
    return f"{scaled:.4g}"


def display_cell(name: str, value: Any) -> tuple[str, str]:
    """A cell's text and its hover text ("" when the text says it all)."""
    if value is None or (not isinstance(value, str | bytes | Sequence) and pd.isna(value)):
        return "—", ""
    fmt = column_format(name)
    if isinstance(value, bool):
        return ("yes" if value else "no"), ""
    if isinstance(value, int) and not fmt.decimals:
        return f"{value * fmt.scale:g}" if fmt.scale != 1.0 else str(value), ""
    if isinstance(value, float | int):
        return _number(float(value), fmt), ""
    if isinstance(value, pd.Timestamp | datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S"), ""
    text = str(value)
    if fmt.path and "/" in text:
        return PurePosixPath(text).name or text, text[:MAX_TITLE]
    if len(text) > MAX_CELL:
        return text[: MAX_CELL - 1] + "…", text[:MAX_TITLE]
    return text, ""


def display_cells(frame: pd.DataFrame, names: Sequence[str]) -> tuple[list[list[str]], list[list[str]]]:
    """Every cell of ``names`` as text, and its hover text, row by row."""
    texts: list[list[str]] = []
    titles: list[list[str]] = []
    values = frame[list(names)].astype(object).itertuples(index=False, name=None) if len(names) else ()
    for row in values:
        shown = [display_cell(n, v) for n, v in zip(names, row, strict=True)]
        texts.append([t for t, _ in shown])
        titles.append([h for _, h in shown])
    return texts, titles


_ESM = r"""
function h(tag, attrs = {}, text = null) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== null) el.textContent = text;
  return el;
}

function render({ model, el }) {
  const root = h("div", { class: "contimg-grid", tabindex: "0" });
  const bar = h("div", { class: "contimg-grid-bar" });
  const menu = h("details", { class: "contimg-grid-columns" });
  menu.appendChild(h("summary", {}, "columns"));
  const choices = h("div", { class: "contimg-grid-choices" });
  menu.appendChild(choices);
  const hint = h("span", { class: "contimg-grid-hint" },
    "click a row to open it · ↑/↓ or j/k move · Enter opens · space checks · click a header to sort");
  bar.append(menu, hint);
  const scroller = h("div", { class: "contimg-grid-scroll" });
  const table = h("table", { class: "contimg-grid-table" });
  scroller.appendChild(table);
  root.append(bar, scroller);
  el.appendChild(root);

  const save = (values) => {
    for (const [k, v] of Object.entries(values)) model.set(k, v);
    model.save_changes();
  };
  const open = (i) => save({ selected: i, opened: i, open_count: model.get("open_count") + 1 });
  const toggle = (i) => {
    const now = new Set(model.get("checked"));
    if (now.has(i)) now.delete(i); else now.add(i);
    save({ checked: [...now].sort((a, b) => a - b) });
  };

  function drawChoices() {
    choices.replaceChildren();
    const visible = new Set(model.get("visible"));
    for (const column of model.get("columns")) {
      const label = h("label");
      const box = h("input", { type: "checkbox", "data-column": column.name });
      box.checked = visible.has(column.name);
      box.addEventListener("change", () => {
        const now = model.get("columns").map((c) => c.name)
          .filter((n) => (n === column.name ? box.checked : visible.has(n)));
        save({ visible: now });
      });
      label.append(box, document.createTextNode(" " + column.header + (column.unit ? ` (${column.unit})` : "")));
      choices.appendChild(label);
    }
  }

  function draw() {
    const columns = model.get("columns");
    const visible = new Set(model.get("visible"));
    const shown = columns.map((c, i) => [c, i]).filter(([c]) => visible.has(c.name));
    const sortable = new Set(model.get("sortable"));
    const sortBy = model.get("sort_by");
    const descending = model.get("descending");
    const selected = model.get("selected");
    const cells = model.get("cells");
    const titles = model.get("titles");
    const head = h("thead");
    const headRow = h("tr");
    const checked = new Set(model.get("checked"));
    if (model.get("checkable")) {
      const th = h("th", { class: "check" });
      const all = h("input", { type: "checkbox", class: "contimg-check-all", title: "check every row of this page" });
      all.checked = cells.length > 0 && checked.size === cells.length;
      all.addEventListener("change", () => save({ checked: all.checked ? cells.map((_, i) => i) : [] }));
      th.appendChild(all);
      headRow.appendChild(th);
    }
    for (const [column] of shown) {
      const th = h("th", { "data-column": column.name });
      if (column.numeric) th.classList.add("num");
      th.textContent = column.header + (column.unit ? ` (${column.unit})` : "");
      if (sortable.has(column.name)) {
        th.classList.add("sortable");
        th.title = "sort by " + column.header;
        if (column.name === sortBy) {
          th.classList.add("sorted");
          th.textContent += descending ? " ▼" : " ▲";
        }
        th.addEventListener("click", () => {
          if (column.name === sortBy) save({ descending: !descending });
          else save({ sort_by: column.name, descending: column.name !== "path" && column.name !== "source_id" });
        });
      }
      headRow.appendChild(th);
    }
    head.appendChild(headRow);
    const body = h("tbody");
    cells.forEach((row, r) => {
      const tr = h("tr", { "data-row": String(r) });
      if (r === selected) tr.classList.add("selected");
      if (model.get("checkable")) {
        const td = h("td", { class: "check" });
        const box = h("input", { type: "checkbox", class: "contimg-check" });
        box.checked = checked.has(r);
        box.addEventListener("click", (event) => event.stopPropagation());  // checking is not opening
        box.addEventListener("change", () => toggle(r));
        td.appendChild(box);
        tr.appendChild(td);
      }
      for (const [column, c] of shown) {
        const td = h("td", { "data-column": column.name }, row[c]);
        if (column.numeric) td.classList.add("num");
        if (titles[r][c]) td.title = titles[r][c];
        if (column.name.endsWith("grade") && ["good", "warn", "fail"].includes(row[c])) {
          td.classList.add("grade-" + row[c]);
        }
        if (row[c] === "—") td.classList.add("missing");
        tr.appendChild(td);
      }
      tr.addEventListener("click", () => { root.focus(); open(r); });
      body.appendChild(tr);
    });
    table.replaceChildren(head, body);
    if (cells.length === 0 && model.get("loaded")) {
      const empty = h("tr");
      empty.appendChild(h("td", { colspan: String(Math.max(1, shown.length)), class: "missing" }, "no rows"));
      body.appendChild(empty);
    }
    const current = body.querySelector("tr.selected");
    if (current) current.scrollIntoView({ block: "nearest" });
  }

  root.addEventListener("keydown", (event) => {
    const n = model.get("cells").length;
    let i = model.get("selected");
    if (event.key === "ArrowDown" || event.key === "j") i = Math.min(n - 1, i + 1);
    else if (event.key === "ArrowUp" || event.key === "k") i = Math.max(0, i - 1);
    else if (event.key === "Enter" && i >= 0) { open(i); event.preventDefault(); event.stopPropagation(); return; }
    else if ((event.key === " " || event.key === "x") && i >= 0 && model.get("checkable")) {
      toggle(i); event.preventDefault(); event.stopPropagation(); return;
    }
    else return;
    // Keep JupyterLab's own shortcuts (j/k, arrows move between cells) out of the grid
    event.preventDefault();
    event.stopPropagation();
    if (n > 0) save({ selected: i });
  });

  model.on("change:columns", () => { drawChoices(); draw(); });
  model.on("change:visible", () => { drawChoices(); draw(); });
  for (const name of ["cells", "selected", "sort_by", "descending", "sortable", "loaded", "checked", "checkable"]) model.on("change:" + name, draw);
  drawChoices();
  draw();
}

export default { render };
"""

_CSS = """
.contimg-grid { font-size: 12px; outline: none; }
.contimg-grid:focus-visible { box-shadow: 0 0 0 2px #0969da55; border-radius: 4px; }
.contimg-grid-bar { display: flex; gap: 12px; align-items: baseline; margin: 2px 0 4px; color: #57606a; }
.contimg-grid-columns summary { cursor: pointer; color: #0969da; }
.contimg-grid-choices { position: absolute; z-index: 10; background: white; border: 1px solid #d0d7de;
  border-radius: 6px; padding: 6px 10px; max-height: 320px; overflow: auto; box-shadow: 0 4px 12px #0002; }
.contimg-grid-choices label { display: block; white-space: nowrap; }
.contimg-grid-hint { font-size: 11px; }
.contimg-grid-scroll { max-height: 62vh; overflow: auto; border: 1px solid #d0d7de; border-radius: 6px; }
.contimg-grid-table { border-collapse: separate; border-spacing: 0; width: 100%; }
.contimg-grid-table th { position: sticky; top: 0; background: #f6f8fa; text-align: left; font-weight: 600;
  padding: 4px 8px; border-bottom: 1px solid #d0d7de; white-space: nowrap; z-index: 1; }
.contimg-grid-table th.sortable { cursor: pointer; color: #0969da; }
.contimg-grid-table th.sorted { background: #ddf4ff; }
.contimg-grid-table td { padding: 3px 8px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
  max-width: 28em; border-bottom: 1px solid #eaeef2; font-variant-numeric: tabular-nums; }
.contimg-grid-table tbody tr { cursor: pointer; }
.contimg-grid-table tbody tr:hover { background: #f6f8fa; }
.contimg-grid-table tbody tr.selected { background: #ddf4ff; }
.contimg-grid-table td.missing { color: #8c959f; }
.contimg-grid-table td.check, .contimg-grid-table th.check { width: 1.5em; padding-right: 0; }
.contimg-grid-table td.num, .contimg-grid-table th.num { text-align: right; }
.contimg-grid-table td.grade-good { color: #1a7f37; font-weight: 600; }
.contimg-grid-table td.grade-warn { color: #9a6700; font-weight: 600; }
.contimg-grid-table td.grade-fail { color: #cf222e; font-weight: 600; }
"""


class Grid(anywidget.AnyWidget):
    """One page of rows; see the module's docstring for what the user can do with it."""

    _esm = _ESM
    _css = _CSS
    columns = traitlets.List(traitlets.Dict()).tag(sync=True)
    visible = traitlets.List(traitlets.Unicode()).tag(sync=True)
    sortable = traitlets.List(traitlets.Unicode()).tag(sync=True)
    cells = traitlets.List(traitlets.List()).tag(sync=True)
    titles = traitlets.List(traitlets.List()).tag(sync=True)
    sort_by = traitlets.Unicode("").tag(sync=True)
    descending = traitlets.Bool(True).tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)
    opened = traitlets.Int(-1).tag(sync=True)
    open_count = traitlets.Int(0).tag(sync=True)
    loaded = traitlets.Bool(False).tag(sync=True)  # before the first page: no "no rows" line
    checkable = traitlets.Bool(False).tag(sync=True)  # a check box per row, for acting on several at once
    checked = traitlets.List(traitlets.Int()).tag(sync=True)  # the rows checked on this page

    def show_frame(self, frame: pd.DataFrame, names: Sequence[str]) -> None:
        """Show ``frame``'s ``names`` columns (those the user has hidden stay hidden); no row selected."""
        texts, titles = display_cells(frame, names)
        with self.hold_sync():
            numeric = [
                n
                for n in names
                if pd.api.types.is_numeric_dtype(frame[n]) and not pd.api.types.is_bool_dtype(frame[n])
            ]
            columns = display_columns(names, numeric)
            if [c["name"] for c in columns] != [c["name"] for c in self.columns]:
                self.columns = columns
            self.selected = -1
            self.checked = []
            self.cells = texts
            self.titles = titles
            self.loaded = True
