"""Where the pipeline keeps things and what it calls them, as the demo writes them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..mjd import mjd_to_unix

MS_ROOT = "/stage/dsa110-contimg/ms"
IMAGE_ROOT = "/stage/dsa110-contimg/images"
CAL_ROOT = "/stage/dsa110-contimg/caltables"
INCOMING_ROOT = "/data/incoming"
EXPECTED_SUBBANDS = 16
DSA110_DEC = 54.57


def ms_name(mjd: float) -> str:
    """The pipeline names an MS after its start time: ``2025-10-05T12:30:00.ms``."""
    stamp = datetime.fromtimestamp(round(float(mjd_to_unix(mjd))), tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + ".ms"


def source_name(ra: float, dec: float) -> str:
    """An IAU-style name from a position: ``J123456.7+543210.9``."""
    h = ra / 15.0
    hh, mm = int(h), int((h % 1) * 60)
    ss = ((h * 60) % 1) * 60
    sign = "+" if dec >= 0 else "-"
    d = abs(dec)
    dd, dm = int(d), int((d % 1) * 60)
    ds = ((d * 60) % 1) * 60
    return f"J{hh:02d}{mm:02d}{ss:04.1f}{sign}{dd:02d}{dm:02d}{ds:04.1f}"


def py(values: np.ndarray, null_mask: np.ndarray | None = None) -> list[Any]:
    """numpy -> Python values, with None where ``null_mask`` is set."""
    out: list[Any] = values.tolist()
    if null_mask is not None:
        for i in np.flatnonzero(null_mask):
            out[i] = None
    return out
