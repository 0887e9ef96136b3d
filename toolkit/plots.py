"""Matplotlib figures for reports and notebooks (pure: frames in, figures or PNG bytes out).

Figures are made with ``matplotlib.figure.Figure`` directly, never pyplot: no global state, no GUI backend,
safe in a worker thread. matplotlib is imported on first use, so importing the toolkit stays fast.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def png_data_uri(fig: Figure) -> str:
    """The figure as a ``data:`` URI, so an HTML file carries it with no external asset."""
    return "data:image/png;base64," + base64.b64encode(png(fig)).decode("ascii")
