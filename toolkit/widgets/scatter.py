"""``Scatter``: an interactive scatter plot in the browser (anywidget, canvas; its JavaScript is here, so nothing
comes from the internet). Wheel to zoom, drag with the right button or shift to pan, double-click to reset;
hover shows a point's label; a click or a lasso (drag) selects.

The browser only draws: a click sends where it happened and a lasso sends its outline, both in plot
coordinates, and Python decides which points they select (``nearest``, ``inside``: pure), so a selection is
the same whatever is drawn. Above ``DENSITY_THRESHOLD`` points the plot is drawn as a density (counts in
bins, computed here) with only the highlighted points drawn one by one: 100,000 sources cost what a few
hundred do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import anywidget
import numpy as np
import numpy.typing as npt
import traitlets
from matplotlib.path import Path as PolygonPath

DENSITY_THRESHOLD = 20_000
DENSITY_BINS = (160, 100)
PICK_RADIUS = 0.02  # a click picks the nearest point within 2% of the view's size


def padded_view(xs: npt.ArrayLike, ys: npt.ArrayLike, pad: float = 0.05) -> list[float]:
    """``[x0, x1, y0, y1]`` around the finite points, with a margin."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        return [0.0, 1.0, 0.0, 1.0]
    x0, x1, y0, y1 = float(x[keep].min()), float(x[keep].max()), float(y[keep].min()), float(y[keep].max())
    dx, dy = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    return [x0 - pad * dx, x1 + pad * dx, y0 - pad * dy, y1 + pad * dy]


def nearest(xs: npt.ArrayLike, ys: npt.ArrayLike, at: Sequence[float], view: Sequence[float]) -> int | None:
    """The index of the point nearest to ``at`` (distances in units of the view's width and height), or None
    when none is within ``PICK_RADIUS``."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    if not len(x):
        return None
    width, height = (view[1] - view[0]) or 1.0, (view[3] - view[2]) or 1.0
    distance = np.hypot((x - at[0]) / width, (y - at[1]) / height)
    distance[~np.isfinite(distance)] = np.inf
    best = int(np.argmin(distance))
    return best if distance[best] <= PICK_RADIUS else None


def inside(xs: npt.ArrayLike, ys: npt.ArrayLike, polygon: Sequence[Sequence[float]]) -> list[int]:
    """The indices of the points inside ``polygon`` (a lasso's outline; fewer than 3 corners: none)."""
    if len(polygon) < 3:
        return []
    points = np.column_stack([np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)])
    keep = np.isfinite(points).all(axis=1)
    hits = np.zeros(len(points), dtype=bool)
    hits[keep] = PolygonPath(np.asarray(polygon, dtype=float)).contains_points(points[keep])
    return [int(i) for i in np.flatnonzero(hits)]


def density(xs: npt.ArrayLike, ys: npt.ArrayLike, view: Sequence[float]) -> dict[str, Any]:
    """Counts of points in ``DENSITY_BINS`` bins over ``view`` (for the browser to shade)."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    counts, _, _ = np.histogram2d(x[keep], y[keep], bins=DENSITY_BINS, range=[view[:2], view[2:]])
    return {
        "nx": DENSITY_BINS[0],
        "ny": DENSITY_BINS[1],
        "view": list(view),
        "counts": counts.T.ravel().tolist(),
    }


def finite_or_none(values: npt.ArrayLike) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=float)]


_ESM = r"""
const M = { l: 62, r: 12, t: 10, b: 42 };

function ticks(lo, hi, n) {
  const span = hi - lo; if (!(span > 0)) return [lo];
  const step0 = span / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => span / s <= n) || 10 * mag;
  const out = []; for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(+v.toPrecision(12));
  out.step = step;
  return out;
}
// A tick's text: a power of ten on a log axis; on a linear one, as many decimals as the tick step needs
function label(v, log, step) {
  if (log) return Math.abs(v - Math.round(v)) < 1e-9 ? `1e${Math.round(v)}` : `${Math.pow(10, v).toPrecision(2)}`;
  return v.toFixed(Math.max(0, Math.min(6, -Math.floor(Math.log10(step || 1) + 1e-9))));
}

function render({ model, el }) {
  const wrap = document.createElement("div");
  wrap.className = "contimg-scatter";
  wrap.style.position = "relative";
  const canvas = document.createElement("canvas");
  const tip = document.createElement("div");
  tip.className = "contimg-scatter-tip";
  wrap.append(canvas, tip);
  el.appendChild(wrap);
  const ctx = canvas.getContext("2d");
  let lasso = null, down = null, panFrom = null;

  const size = () => [model.get("width"), model.get("height")];
  const view = () => model.get("view");
  function toPx(x, y) {
    const [W, H] = size(), [x0, x1, y0, y1] = view();
    return [M.l + ((x - x0) / (x1 - x0)) * (W - M.l - M.r), H - M.b - ((y - y0) / (y1 - y0)) * (H - M.t - M.b)];
  }
  function toData(px, py) {
    const [W, H] = size(), [x0, x1, y0, y1] = view();
    return [x0 + ((px - M.l) / (W - M.l - M.r)) * (x1 - x0), y0 + ((H - M.b - py) / (H - M.t - M.b)) * (y1 - y0)];
  }
  function draw() {
    const [W, H] = size(), dpr = window.devicePixelRatio || 1;
    canvas.width = W * dpr; canvas.height = H * dpr; canvas.style.width = W + "px"; canvas.style.height = H + "px";
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    ctx.save(); ctx.beginPath(); ctx.rect(M.l, M.t, W - M.l - M.r, H - M.t - M.b); ctx.clip();
    const d = model.get("density");
    if (d && d.counts) {
      const [dx0, dx1, dy0, dy1] = d.view, top = Math.log1p(Math.max(...d.counts));
      for (let j = 0; j < d.ny; j++) for (let i = 0; i < d.nx; i++) {
        const c = d.counts[j * d.nx + i]; if (!c) continue;
        const [ax, ay] = toPx(dx0 + (i / d.nx) * (dx1 - dx0), dy0 + ((j + 1) / d.ny) * (dy1 - dy0));
        const [bx, by] = toPx(dx0 + ((i + 1) / d.nx) * (dx1 - dx0), dy0 + (j / d.ny) * (dy1 - dy0));
        ctx.fillStyle = `rgba(9,105,218,${0.15 + 0.85 * Math.log1p(c) / top})`;
        ctx.fillRect(ax, ay, bx - ax + 0.5, by - ay + 0.5);
      }
    }
    const xs = model.get("x"), ys = model.get("y"), colours = model.get("colours"), selected = new Set(model.get("selected"));
    for (let i = 0; i < xs.length; i++) {
      if (xs[i] === null || ys[i] === null) continue;
      const [px, py] = toPx(xs[i], ys[i]);
      ctx.fillStyle = colours[i] || "#0969da";
      ctx.beginPath(); ctx.arc(px, py, selected.has(i) ? 5 : 3, 0, 2 * Math.PI); ctx.fill();
      if (selected.has(i)) { ctx.strokeStyle = "#1f2328"; ctx.lineWidth = 1.5; ctx.stroke(); }
    }
    const [x0, x1, y0, y1] = view();
    ctx.setLineDash([5, 4]); ctx.strokeStyle = "#cf222e"; ctx.lineWidth = 1.2;
    for (const line of model.get("lines")) {
      ctx.beginPath();
      if (line.axis === "x") { const [px] = toPx(line.value, 0); ctx.moveTo(px, M.t); ctx.lineTo(px, H - M.b); }
      else { const [, py] = toPx(0, line.value); ctx.moveTo(M.l, py); ctx.lineTo(W - M.r, py); }
      ctx.stroke();
    }
    ctx.setLineDash([]);
    if (lasso && lasso.length > 1) {
      ctx.strokeStyle = "#8250df"; ctx.fillStyle = "rgba(130,80,223,0.08)"; ctx.beginPath();
      lasso.forEach(([px, py], k) => (k ? ctx.lineTo(px, py) : ctx.moveTo(px, py))); ctx.closePath(); ctx.fill(); ctx.stroke();
    }
    ctx.restore();
    ctx.strokeStyle = "#8c959f"; ctx.strokeRect(M.l, M.t, W - M.l - M.r, H - M.t - M.b);
    ctx.fillStyle = "#57606a"; ctx.font = "11px sans-serif"; ctx.textAlign = "center";
    // A view may run backwards (RA grows to the left on the sky)
    const xt = ticks(Math.min(x0, x1), Math.max(x0, x1), 6), yt = ticks(Math.min(y0, y1), Math.max(y0, y1), 5);
    for (const v of xt) { const [px] = toPx(v, 0); ctx.fillText(label(v, model.get("x_log"), xt.step), px, H - M.b + 14); }
    ctx.textAlign = "right";
    for (const v of yt) { const [, py] = toPx(0, v); ctx.fillText(label(v, model.get("y_log"), yt.step), M.l - 4, py + 4); }
    ctx.textAlign = "center"; ctx.font = "12px sans-serif"; ctx.fillStyle = "#1f2328";
    ctx.fillText(model.get("x_label"), M.l + (W - M.l - M.r) / 2, H - 6);
    ctx.save(); ctx.translate(14, M.t + (H - M.t - M.b) / 2); ctx.rotate(-Math.PI / 2); ctx.fillText(model.get("y_label"), 0, 0); ctx.restore();
  }
  const local = (e) => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  function hover(px, py) {
    const labels = model.get("labels"), xs = model.get("x"), ys = model.get("y");
    let best = -1, bestD = 64;
    for (let i = 0; i < xs.length; i++) {
      if (xs[i] === null || ys[i] === null) continue;
      const [qx, qy] = toPx(xs[i], ys[i]), d = (qx - px) ** 2 + (qy - py) ** 2;
      if (d < bestD) { bestD = d; best = i; }
    }
    if (best >= 0 && labels[best]) {
      tip.textContent = labels[best]; tip.style.display = "block";
      tip.style.left = px + 12 + "px"; tip.style.top = py + 8 + "px";
    } else tip.style.display = "none";
  }
  canvas.addEventListener("mousedown", (e) => {
    const p = local(e);
    if (e.button === 2 || e.shiftKey) { panFrom = [p, view()]; e.preventDefault(); return; }
    down = p; lasso = [p];
  });
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  canvas.addEventListener("mousemove", (e) => {
    const p = local(e);
    if (panFrom) {
      const [[sx, sy], v] = panFrom, [W, H] = size();
      const dx = ((p[0] - sx) / (W - M.l - M.r)) * (v[1] - v[0]), dy = ((p[1] - sy) / (H - M.t - M.b)) * (v[3] - v[2]);
      model.set("view", [v[0] - dx, v[1] - dx, v[2] + dy, v[3] + dy]); draw(); return;
    }
    if (down) { lasso.push(p); draw(); return; }
    hover(p[0], p[1]);
  });
  window.addEventListener("mouseup", (e) => {
    if (panFrom) { panFrom = null; model.save_changes(); return; }
    if (!down) return;
    // A click moves (almost) nowhere; a lasso may end where it began, so its farthest point decides
    const moved = Math.max(0, ...lasso.map(([px, py]) => Math.hypot(px - down[0], py - down[1])));
    if (moved < 5 || lasso.length < 4) {
      model.set("click_at", toData(...down)); model.set("click_count", model.get("click_count") + 1);
    } else {
      model.set("lasso", lasso.map(([px, py]) => toData(px, py))); model.set("lasso_count", model.get("lasso_count") + 1);
    }
    model.save_changes(); down = null; lasso = null; draw();
  });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [cx, cy] = toData(...local(e)), f = e.deltaY > 0 ? 1.25 : 0.8, [x0, x1, y0, y1] = view();
    model.set("view", [cx - (cx - x0) * f, cx + (x1 - cx) * f, cy - (cy - y0) * f, cy + (y1 - cy) * f]);
    model.save_changes(); draw();
  }, { passive: false });
  canvas.addEventListener("dblclick", () => { model.set("view", model.get("home")); model.save_changes(); draw(); });
  canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  for (const name of ["x", "y", "colours", "selected", "lines", "view", "density", "width", "height", "x_label", "y_label"])
    model.on("change:" + name, draw);
  draw();
}
export default { render };
"""

_CSS = """
.contimg-scatter canvas { cursor: crosshair; display: block; }
.contimg-scatter-tip { position: absolute; display: none; pointer-events: none; background: #1f2328; color: white;
  font-size: 11px; padding: 2px 6px; border-radius: 4px; white-space: nowrap; z-index: 5; }
"""


class Scatter(anywidget.AnyWidget):
    """Points (``x``, ``y`` in plot coordinates, None for a missing one), their ``colours`` and hover
    ``labels``, optional ``density`` and dashed ``lines``; ``view`` is the visible box ``[x0, x1, y0, y1]``
    and ``home`` the one a double-click returns to. ``click_at``/``lasso`` (with their counters) are what
    the user did, in plot coordinates; ``selected`` marks points."""

    _esm = _ESM
    _css = _CSS
    x = traitlets.List(traitlets.Any()).tag(sync=True)  # floats, None for a missing value
    y = traitlets.List(traitlets.Any()).tag(sync=True)
    colours = traitlets.List(traitlets.Unicode()).tag(sync=True)
    labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    density = traitlets.Dict().tag(sync=True)
    lines = traitlets.List(traitlets.Dict()).tag(sync=True)
    view = traitlets.List(traitlets.Float()).tag(sync=True)
    home = traitlets.List(traitlets.Float()).tag(sync=True)
    x_label = traitlets.Unicode("").tag(sync=True)
    y_label = traitlets.Unicode("").tag(sync=True)
    x_log = traitlets.Bool(False).tag(sync=True)
    y_log = traitlets.Bool(False).tag(sync=True)
    width = traitlets.Int(560).tag(sync=True)
    height = traitlets.Int(380).tag(sync=True)
    selected = traitlets.List(traitlets.Int()).tag(sync=True)
    click_at = traitlets.List(traitlets.Float()).tag(sync=True)
    click_count = traitlets.Int(0).tag(sync=True)
    lasso = traitlets.List(traitlets.List(traitlets.Float())).tag(sync=True)
    lasso_count = traitlets.Int(0).tag(sync=True)
