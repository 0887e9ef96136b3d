"""The last night that has data: the one window the notebooks, the Dashboard and the QA report's default use.

A night is a UTC day. For the DSA-110 at the Owens Valley, 00:00 UTC is 16:00 local time (17:00 in summer),
so a local night falls inside one UTC day, and it is the day the QA report's per-night tables group by.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ..db.connections import Connections
from ..errors import RecordNotFoundError
from ..mjd import mjd_to_unix
from ..records import Night
from .query import column_or_null

# until= bounds are inclusive, so a night ends one microsecond before the next one starts
_LAST_INSTANT = timedelta(days=1) - timedelta(microseconds=1)


def night_of(newest: datetime) -> Night:
    """The night (UTC day) holding ``newest``."""
    start = newest.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return Night(date=start.date(), start=start, end=start + _LAST_INSTANT, newest=newest.astimezone(UTC))


def newest_query(catalog_has_mid_mjd: bool) -> str:
    """The newest image's creation time and the newest MS's mid-observation MJD, in one row."""
    mid = "m.mid_mjd" if catalog_has_mid_mjd else "NULL"
    return f"SELECT (SELECT MAX(i.created_at) FROM images AS i), (SELECT MAX({mid}) FROM ms_index AS m)"


async def last_night(connections: Connections) -> Night:
    db = await connections.products()
    has_mid = column_or_null(db.catalog, "ms_index", "m", "mid_mjd") != "NULL"
    ((image_unix, ms_mjd),) = await db.fetch_rows(newest_query(has_mid))
    if image_unix is not None:
        newest = float(image_unix)
    elif ms_mjd is not None:
        newest = float(mjd_to_unix(float(ms_mjd)))
    else:
        raise RecordNotFoundError(
            "night",
            "last",
            "this site has no images and no measurement sets yet; pass since=/until= to choose a window",
        )
    return night_of(datetime.fromtimestamp(newest, UTC))
