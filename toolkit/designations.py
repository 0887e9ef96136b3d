"""Source names: IAU-style J2000 designations, ``J123456.7+123456.7``, both ways (pure).

A designation *truncates* the position (the IAU rule), to 0.1 s of RA and 0.1 arcsec of Dec, so a name
stands for a small box on the sky, not a point: :func:`box` gives that box, which is how ``sources.list``
finds a source by name with a bound SQL range instead of computing every source's name.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .errors import ValidationError

_NAME = re.compile(
    r"^(?:[A-Za-z0-9]+\s+)?J(\d{2})(\d{2})(\d{2})(?:\.(\d{1,3}))?\s*([+-])(\d{2})(\d{2})(\d{2})(?:\.(\d{1,3}))?$"
)


def designations(ra_deg: Any, dec_deg: Any) -> list[str | None]:
    """``J{HHMMSS.s}{+DDMMSS.s}`` for each position (None where it is not finite)."""
    ra = np.asarray(ra_deg, dtype="float64") % 360.0
    dec = np.asarray(dec_deg, dtype="float64")
    ok = np.isfinite(ra) & np.isfinite(dec)
    # Tenths of a second of time and of arc, truncated; a tiny epsilon keeps 12.3 from printing as 12.2.
    ra_t = np.floor(np.where(ok, ra, 0.0) / 15.0 * 36_000.0 + 1e-6).astype("int64") % 864_000
    dec_t = np.floor(np.abs(np.where(ok, dec, 0.0)) * 36_000.0 + 1e-6).astype("int64")
    out: list[str | None] = []
    for good, r, d, negative in zip(
        ok.tolist(), ra_t.tolist(), dec_t.tolist(), (dec < 0).tolist(), strict=True
    ):
        if not good:
            out.append(None)
            continue
        sign = "-" if negative else "+"
        out.append(
            f"J{r // 36_000:02d}{r // 600 % 60:02d}{r % 600 // 10:02d}.{r % 10}"
            f"{sign}{d // 36_000:02d}{d // 600 % 60:02d}{d % 600 // 10:02d}.{d % 10}"
        )
    return out


def box(name: str) -> tuple[float, float, float, float, bool]:
    """(ra_low, ra_high, dec_low, dec_high, south) in degrees: the positions whose designation is ``name`` at
    its precision (seconds are required: ``J1234+5612`` is refused; a prefix such as ``DSA`` is allowed).
    RA runs from low (inclusive) to high (exclusive). Dec truncates toward zero, so the inclusive end is the
    one nearer zero: low inclusive in the north, high inclusive in the south (``south`` is True)."""
    if not isinstance(name, str) or len(name) > 64:
        raise ValidationError(f"name must be a designation such as 'J123456.7+123456.7', got {name!r}")
    match = _NAME.match(name.strip())
    if match is None:
        raise ValidationError(
            f"name {name!r} is not a J2000 designation such as 'J123456.7+123456.7' (JHHMMSS.s+DDMMSS.s)"
        )
    rh, rm, rs, rf, sign, dd, dm, ds, df = match.groups()
    if int(rh) > 23 or int(rm) > 59 or int(rs) > 59 or int(dd) > 90 or int(dm) > 59 or int(ds) > 59:
        raise ValidationError(f"name {name!r} is not a position: hours < 24, minutes and seconds < 60")
    ra_step = 10.0 ** -len(rf or "")
    dec_step = 10.0 ** -len(df or "")
    ra_s = int(rh) * 3600 + int(rm) * 60 + int(rs) + (int(rf) * ra_step if rf else 0.0)
    dec_s = int(dd) * 3600 + int(dm) * 60 + int(ds) + (int(df) * dec_step if df else 0.0)
    ra_low, ra_high = ra_s * 15.0 / 3600.0, (ra_s + ra_step) * 15.0 / 3600.0
    near, far = dec_s / 3600.0, (dec_s + dec_step) / 3600.0
    if sign == "-":
        return ra_low, ra_high, -far, -near, True
    return ra_low, ra_high, near, far, False


def box_sql(ra_sql: str, dec_sql: str, name: str) -> tuple[str, list[float]]:
    """A condition (and its parameters) true where the position ``ra_sql``/``dec_sql`` has this name."""
    ra_low, ra_high, dec_low, dec_high, south = box(name)
    dec_cond = f"{dec_sql} > ? AND {dec_sql} <= ?" if south else f"{dec_sql} >= ? AND {dec_sql} < ?"
    return f"{ra_sql} >= ? AND {ra_sql} < ? AND {dec_cond}", [ra_low, ra_high, dec_low, dec_high]
