"""Matplotlib figures for reports and notebooks (pure: frames in, figures or PNG bytes out).

Figures are made with ``matplotlib.figure.Figure`` directly, never pyplot: no global state, no GUI backend,
safe in a worker thread. matplotlib is imported on first use, so importing the toolkit stays fast.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .science import EtaVResult

GRADE_COLOURS = {"good": "#1a7f37", "warn": "#bf8700", "fail": "#cf222e", "not assessed": "#8c959f"}


def _figure(width: float = 7.0, height: float = 3.0) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def grades_per_night(counts: pd.DataFrame, what: str = "images") -> Figure:
    """Stacked bars: one per night, split by grade."""
    fig = _figure()
    ax = fig.add_subplot()
    bottom = pd.Series(0, index=counts.index, dtype="float64")
    labels = [str(n) for n in counts.index]
    for grade, colour in GRADE_COLOURS.items():
        if grade in counts:
            ax.bar(labels, counts[grade], bottom=bottom, color=colour, label=grade)
            bottom = bottom + counts[grade]
    ax.set_ylabel(f"{what}")
    ax.set_title(f"{what} by grade per night (UTC)")
    ax.legend(loc="upper left", fontsize="small")
    ax.tick_params(axis="x", labelrotation=45, labelsize="small")
    return fig


def failing_checks(counts: pd.DataFrame) -> Figure:
    """Horizontal bars: how often each check failed or warned."""
    fig = _figure(7.0, max(2.0, 0.35 * len(counts) + 1.0))
    ax = fig.add_subplot()
    labels = list(counts["check"])
    ax.barh(labels, counts["fail"], color=GRADE_COLOURS["fail"], label="fail")
    ax.barh(labels, counts["warn"], left=counts["fail"], color=GRADE_COLOURS["warn"], label="warn")
    ax.invert_yaxis()
    ax.set_xlabel("objects")
    ax.set_title("failing and warning checks")
    ax.legend(loc="lower right", fontsize="small")
    return fig


def flagged_fraction_trend(trend: pd.DataFrame, warn: float | None, fail: float | None) -> Figure:
    """Median and maximum calibration flagged fraction per night, with the thresholds."""
    fig = _figure()
    ax = fig.add_subplot()
    labels = [str(n) for n in trend.index]
    ax.plot(labels, trend["median_pct"], marker="o", label="median")
    ax.plot(labels, trend["max_pct"], marker="^", linestyle="--", label="max")
    for level, colour in ((warn, GRADE_COLOURS["warn"]), (fail, GRADE_COLOURS["fail"])):
        if level is not None:
            ax.axhline(level, color=colour, linewidth=1)
    ax.set_ylabel("flagged (%)")
    ax.set_title("calibration flagged fraction per night (UTC)")
    ax.legend(loc="upper left", fontsize="small")
    ax.tick_params(axis="x", labelrotation=45, labelsize="small")
    return fig


def _axes(ax: Axes | None, width: float = 7.0, height: float = 3.5) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.get_figure(root=True), ax  # type: ignore[return-value]
    fig = _figure(width, height)
    return fig, fig.add_subplot()


def plot_lightcurve(
    curve: pd.DataFrame,
    *,
    flux: str = "flux_jy",
    error: str = "flux_err_jy",
    time: str = "mjd",
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """A light curve in mJy with error bars, against MJD (``time="mjd"``) or UTC date (``time="date"``)."""
    if time not in ("mjd", "date"):
        raise ValueError(f"time must be 'mjd' or 'date', not {time!r}")
    fig, ax = _axes(ax)
    x: Any = curve["mjd"]
    if time == "date":
        x = pd.to_datetime((curve["mjd"] - 40587.0) * 86400.0, unit="s", utc=True)
    y = curve[flux] * 1e3
    yerr = curve[error] * 1e3 if error in curve else None
    ax.errorbar(x, y, yerr=yerr, fmt="o", markersize=3, capsize=2)
    ax.set_xlabel("MJD" if time == "mjd" else "date (UTC)")
    ax.set_ylabel(f"{flux} (mJy)")
    if title is None and "source_id" in curve and len(curve):
        title = str(curve["source_id"].iloc[0])
    if title:
        ax.set_title(title)
    if time == "date":
        fig.autofmt_xdate()
    return fig


def plot_eta_v(result: EtaVResult, *, ax: Axes | None = None) -> Figure:
    """eta against V (log-log) for every source, the two cutoffs, and the candidates highlighted."""
    fig, ax = _axes(ax, 6.0, 5.0)
    metrics = result.metrics
    ok = (metrics["eta"] > 0) & (metrics["v"] > 0)
    ax.scatter(metrics.loc[ok, "eta"], metrics.loc[ok, "v"], s=6, color="#8c959f", label="sources")
    cand = result.candidates
    ax.scatter(cand["eta"], cand["v"], s=18, color=GRADE_COLOURS["fail"], label=f"candidates ({len(cand)})")
    ax.axvline(
        result.eta_cutoff,
        color="#0969da",
        linestyle="--",
        linewidth=1,
        label=f"eta = {result.eta_cutoff:.3g}",
    )
    ax.axhline(
        result.v_cutoff, color="#8250df", linestyle="--", linewidth=1, label=f"V = {result.v_cutoff:.3g}"
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("eta")
    ax.set_ylabel("V")
    ax.legend(loc="lower right", fontsize="small")
    return fig


def plot_two_epoch(
    pairs: pd.DataFrame, *, vs: float = 4.3, m: float = 0.26, ax: Axes | None = None
) -> Figure:
    """|Vs| against m for epoch pairs, with the candidate region's boundaries."""
    fig, ax = _axes(ax, 6.0, 4.5)
    ax.scatter(pairs["m"], pairs["vs"].abs(), s=6, color=GRADE_COLOURS["fail"])
    for x in (-m, m):
        ax.axvline(x, color="#0969da", linestyle="--", linewidth=1)
    ax.axhline(vs, color="#8250df", linestyle="--", linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("m (modulation index)")
    ax.set_ylabel("|Vs|")
    ax.set_title(f"{len(pairs)} candidate pairs (|Vs| > {vs:g}, |m| > {m:g})")
    return fig


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def png_data_uri(fig: Figure) -> str:
    """The figure as a ``data:`` URI, so an HTML file carries it with no external asset."""
    return "data:image/png;base64," + base64.b64encode(png(fig)).decode("ascii")
