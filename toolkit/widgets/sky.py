"""``SkyPanel(client)``: sources and image centres on the sky (RA increasing to the left, as on the sky), linked:
a click opens the nearest source or image below. Above ``DENSITY_THRESHOLD`` sources they are drawn as a
density with the image centres on top; the click is still resolved against every point."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Mapping
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd

from ..client import AsyncClient
from .panels import Panel, make_panel
from .runner import AnyClient, Runner
from .scatter import DENSITY_THRESHOLD, Scatter, density, finite_or_none, nearest, padded_view

MAX_IMAGES = 50_000  # image centres read at most (newest first)
SOURCE_COLOUR, IMAGE_COLOUR = "#0969da", "#bf8700"


class SkyPanel(w.VBox):  # type: ignore[misc]
    def __init__(self, client: AnyClient, *, density_above: int = DENSITY_THRESHOLD) -> None:
        self.client = client
        self.runner = Runner(client)
        self.density_above = density_above
        self.plot = Scatter(x_label="RA (deg)", y_label="Dec (deg)", width=620, height=360)
        self.plot.add_class("contimg-sky-plot")
        self.plot.observe(self._clicked, names="click_count")
        self.heading = w.HTML('<span style="color:#57606a">reading positions…</span>')
        self.detail = w.VBox()
        self.panel: Panel | None = None
        self.points = pd.DataFrame(columns=["kind", "ident", "ra_deg", "dec_deg"])
        super().__init__([self.heading, self.plot, self.detail])
        self.add_class("contimg-sky")

        async def work(api: AsyncClient) -> tuple[pd.DataFrame, pd.DataFrame]:
            return await asyncio.gather(api.sources.list(), api.images.list(limit=MAX_IMAGES))

        def failed(message: str) -> None:
            self.heading.value = f'<span style="color:#cf222e">{html.escape(message)}</span>'

        self.runner.start(work, self._show, failed)

    def _show(self, result: tuple[pd.DataFrame, pd.DataFrame]) -> None:
        sources, images = result
        centres = images.dropna(subset=["center_ra_deg", "center_dec_deg"])
        self.points = pd.concat(
            [
                pd.DataFrame(
                    {"kind": "source", "ident": sources["source_id"].astype(str),
                     "ra_deg": sources["ra_deg"], "dec_deg": sources["dec_deg"]}
                ),
                pd.DataFrame(
                    {"kind": "image", "ident": centres["path"].astype(str),
                     "ra_deg": centres["center_ra_deg"], "dec_deg": centres["center_dec_deg"]}
                ),
            ],
            ignore_index=True,
        )  # fmt: skip
        ra = self.points["ra_deg"].to_numpy(dtype=float, na_value=np.nan)
        dec = self.points["dec_deg"].to_numpy(dtype=float, na_value=np.nan)
        x0, x1, y0, y1 = padded_view(ra, dec)
        view = [x1, x0, y0, y1]  # RA grows to the left
        many = len(sources) > self.density_above
        drawn = self.points[self.points["kind"] == "image"] if many else self.points
        with self.plot.hold_sync():
            self.plot.view, self.plot.home = view, view
            self.plot.density = (
                density(ra[: len(sources)], dec[: len(sources)], [x0, x1, y0, y1]) if many else {}
            )
            self.plot.x = finite_or_none(drawn["ra_deg"].to_numpy(dtype=float, na_value=np.nan))
            self.plot.y = finite_or_none(drawn["dec_deg"].to_numpy(dtype=float, na_value=np.nan))
            self.plot.colours = [SOURCE_COLOUR if k == "source" else IMAGE_COLOUR for k in drawn["kind"]]
            self.plot.labels = [f"{k} {i}" for k, i in zip(drawn["kind"], drawn["ident"], strict=True)]
        self.heading.value = (
            f'<b>sky</b>: <span style="color:{SOURCE_COLOUR}">● {len(sources):,} sources</span> · '
            f'<span style="color:{IMAGE_COLOUR}">● {len(centres):,} image centres</span> · click one to open it'
        )

    def _clicked(self, _change: Mapping[str, Any]) -> None:
        ra = self.points["ra_deg"].to_numpy(dtype=float, na_value=np.nan)
        dec = self.points["dec_deg"].to_numpy(dtype=float, na_value=np.nan)
        hit = nearest(ra, dec, self.plot.click_at, self.plot.view)
        if hit is not None:
            row = self.points.iloc[hit]
            self.show(str(row["kind"]), str(row["ident"]))

    def show(self, kind: str, ident: str) -> None:
        if self.panel is not None:
            self.panel.close()
        self.panel = make_panel(self.client, kind, ident)
        self.detail.children = (self.panel,)

    async def settled(self) -> None:
        await self.runner.settled()
        if self.panel is not None:
            await self.panel.settled()

    def close(self) -> None:
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.close()
        if getattr(self, "panel", None) is not None:
            self.panel.close()  # type: ignore[union-attr]
        super().close()
