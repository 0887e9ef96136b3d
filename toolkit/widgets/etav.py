"""``EtaVPanel(client)``: the η–V plane of every source, linked to light curves. A click picks the nearest source,
a lasso picks every source inside it; ``panel.selection`` is their metrics (a DataFrame), and the first
one's panel (interactive light curve, details, notes) opens below. Above ``density_above`` sources the
plane is drawn as a density with the candidates and the selection on top."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd

from ..client import AsyncClient
from ..science import EtaVResult
from .panels import SourcePanel
from .runner import AnyClient, Runner
from .scatter import DENSITY_THRESHOLD, Scatter, density, finite_or_none, inside, nearest, padded_view
from .table import html_table

_LABEL_COLOURS = {"transient": "#cf222e", "variable": "#bf8700", "artefact": "#6e7781", "known": "#1a7f37"}
SELECTION_COLUMNS = ("source_id", "n", "eta", "v", "mean_flux", "label")


def log10(values: pd.Series[Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """log10 of positive values; NaN elsewhere (a source with eta or V of 0 cannot sit on log axes)."""
    v = values.to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v > 0, np.log10(v), np.nan)


class EtaVPanel(w.VBox):  # type: ignore[misc]
    def __init__(
        self,
        client: AnyClient,
        *,
        eta_sigma: float = 2.0,
        v_sigma: float = 2.0,
        min_measurements: int = 2,
        density_above: int = DENSITY_THRESHOLD,
    ) -> None:
        self.density_above = density_above
        self.runner = Runner(client)
        self.client = client
        self.plot = Scatter(x_label="η", y_label="V", x_log=True, y_log=True)
        self.plot.add_class("contimg-etav-plot")
        self.plot.observe(self._clicked, names="click_count")
        self.plot.observe(self._lassoed, names="lasso_count")
        self.heading = w.HTML('<span style="color:#57606a">computing η and V…</span>')
        self.table = w.HTML()
        self.table.add_class("contimg-etav-selection")
        self.detail = w.VBox()
        self.selection = pd.DataFrame()
        self.result: EtaVResult | None = None
        self._x = np.empty(0)
        self._y = np.empty(0)
        super().__init__(
            [
                self.heading,
                w.HBox([self.plot, self.table]),
                w.HTML('<span style="color:#57606a;font-size:11px">click a source or drag a lasso around '
                       "several · wheel zooms · shift-drag pans · double-click resets</span>"),
                self.detail,
            ]
        )  # fmt: skip
        self.add_class("contimg-etav")

        async def work(api: AsyncClient) -> EtaVResult:
            return await api.sources.eta_v(
                eta_sigma=eta_sigma, v_sigma=v_sigma, min_measurements=min_measurements
            )

        self.runner.start(work, self._show, self._failed)

    def _failed(self, message: str) -> None:
        self.heading.value = f'<span style="color:#cf222e">{html.escape(message)}</span>'

    def _show(self, result: EtaVResult) -> None:
        self.result = result
        labels = result.candidates.set_index("source_id")["label"] if len(result.candidates) else pd.Series()
        self.metrics = result.metrics.assign(label=result.metrics["source_id"].map(labels))
        self._x, self._y = log10(self.metrics["eta"]), log10(self.metrics["v"])
        view = padded_view(self._x, self._y)
        with self.plot.hold_sync():
            self.plot.view, self.plot.home = view, view
            self.plot.lines = [
                {"axis": "x", "value": float(np.log10(result.eta_cutoff))},
                {"axis": "y", "value": float(np.log10(result.v_cutoff))},
            ]
            self.plot.density = (
                density(self._x, self._y, view) if len(self.metrics) > self.density_above else {}
            )
        self.heading.value = (
            f"<b>η–V</b>: {len(self.metrics):,} sources; cut-offs η &gt; {result.eta_cutoff:.3g}, "
            f"V &gt; {result.v_cutoff:.3g} (dashed); {len(result.candidates)} candidates in colour"
        )
        self._draw()

    def _drawn(self) -> np.ndarray[Any, np.dtype[np.intp]]:
        """The sources drawn one by one: all of them, or (as a density) the candidates and the selection."""
        if len(self.metrics) <= self.density_above:
            return np.arange(len(self.metrics))
        assert self.result is not None
        wanted = set(self.result.candidates["source_id"]) | set(self.selection.get("source_id", ()))
        return np.flatnonzero(self.metrics["source_id"].isin(wanted).to_numpy())

    def _draw(self) -> None:
        drawn = self._drawn()
        rows = self.metrics.iloc[drawn]
        chosen = set(self.selection.get("source_id", ()))
        candidates = set(self.result.candidates["source_id"]) if self.result is not None else set()

        def colour(source: str, label: Any) -> str:
            if source in chosen:
                return "#8250df"
            if pd.notna(label):
                return _LABEL_COLOURS.get(str(label), "#0969da")
            return "#d1242f" if source in candidates else "#8c959f"

        colours = [colour(s, lab) for s, lab in zip(rows["source_id"], rows["label"], strict=True)]
        with self.plot.hold_sync():
            self.plot.x = finite_or_none(self._x[drawn])
            self.plot.y = finite_or_none(self._y[drawn])
            self.plot.colours = colours
            self.plot.labels = [
                f"{s} · η {e:.3g} · V {v:.3g}" + (f" · {lab}" if pd.notna(lab) else "")
                for s, e, v, lab in zip(rows["source_id"], rows["eta"], rows["v"], rows["label"], strict=True)
            ]
            self.plot.selected = [i for i, s in enumerate(rows["source_id"]) if s in chosen]

    # --------------------------------------------------------------------------------- selecting
    def select(self, indices: list[int]) -> None:
        """Select these sources (rows of ``metrics``): the table, the highlight and the first one's panel."""
        self.selection = self.metrics.iloc[indices].reset_index(drop=True)
        columns = [c for c in SELECTION_COLUMNS if c in self.selection]
        self.table.value = (
            f"<b>{len(self.selection)} selected</b>" + html_table(self.selection.head(200), columns)
            if len(self.selection)
            else '<span style="color:#57606a">nothing selected</span>'
        )
        self._draw()
        for child in self.detail.children:
            child.close()
        self.detail.children = (
            (SourcePanel(self.client, str(self.selection["source_id"].iloc[0])),)
            if len(self.selection)
            else ()
        )

    def _clicked(self, _change: Mapping[str, Any]) -> None:
        hit = nearest(self._x, self._y, self.plot.click_at, self.plot.view)
        self.select([] if hit is None else [hit])

    def _lassoed(self, _change: Mapping[str, Any]) -> None:
        self.select(inside(self._x, self._y, self.plot.lasso))

    async def settled(self) -> None:
        await self.runner.settled()
        for child in self.detail.children:
            if isinstance(child, SourcePanel):
                await child.settled()

    def close(self) -> None:
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.close()
        for child in getattr(self, "detail", w.VBox()).children:
            child.close()
        super().close()
