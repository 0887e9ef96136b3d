"""Annotations joined into the read calls: one small notes query per call, never one per row.

The events table is append-only, so its highest ``seq`` is a version: a read call asks for it (one indexed
query), and the per-target summary of a kind (tags, comment count, sign-off, label) is rebuilt from the
events only when it moved. Listings then join the summary on the target's key in memory. If the notes
database is missing or unreadable, the listing still answers, with those columns NA and one warning per
client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import warnings
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd

from ..db.connections import Connections
from ..domains.filters import Filters, NoteKeys
from ..domains.paging import Page
from ..errors import NotesUnavailableWarning, ToolkitError
from .model import attach, events_frame, merge_summaries, summary_by_target
from .query import EventQuery

F = TypeVar("F", bound=Filters)


def _missing(connections: Connections, location: str) -> bool:
    """A notes database that does not exist yet: True (empty) for the default one, where nobody has
    written a note on this machine; a configured one is reported (the path may be wrong)."""
    _, configured = connections.settings.notes_location()
    if configured:
        _warn_once(
            connections,
            f"the notes database {location} does not exist yet (it is created by the first note written)",
        )
        return False
    return True


async def read_events(connections: Connections, query: EventQuery) -> pd.DataFrame | None:
    """The events ``query`` selects; None (after one warning per client) when they cannot be read."""
    store = connections.notes()
    try:
        events = await store.read(query)
    except ToolkitError as exc:
        _warn_once(connections, f"the notes database {store.location} cannot be read ({exc})")
        return None
    if events is None:
        return events_frame([]) if _missing(connections, store.location) else None
    return events


def _warn_once(connections: Connections, message: str) -> None:
    if not connections.notes_warned:
        connections.notes_warned = True
        warnings.warn(f"{message}; annotation columns are NA", NotesUnavailableWarning, stacklevel=4)


async def summary(connections: Connections, kind: str) -> pd.DataFrame | None:
    """Per target of ``kind`` (the index: its key): tags, comment count, sign-off and label; None when the
    notes cannot be read. Rebuilt only when the notes changed since the last call."""
    store = connections.notes()
    try:
        version = await store.version()
    except ToolkitError as exc:
        _warn_once(connections, f"the notes database {store.location} cannot be read ({exc})")
        return None
    if version is None:
        return summary_by_target(events_frame([])) if _missing(connections, store.location) else None
    cached = connections.notes_summaries.get(kind)
    if cached is not None and cached[0] == version:
        hit: pd.DataFrame = cached[1]
        return hit
    # After a write, only the targets it touched are recomputed (from all of their events): rebuilding the
    # summary of 10,000 signed-off images on every new note cost 2.8x the listing it joins.
    touched = None if cached is None or cached[0] > version else cached[0]
    events = await read_events(connections, EventQuery(target_kind=kind, touched_after=touched))
    if events is None:
        return None
    if len(events) < 2_000:  # cheaper here than a thread crossing
        found = summary_by_target(events)
    else:
        found = await (await connections.products()).compute(summary_by_target, events)
    if touched is not None and cached is not None:
        found = merge_summaries(cached[1], found)
    # A write between the version and the events makes the summary newer than its version: the next call
    # sees a higher version and recomputes the targets touched since, so nothing stale is ever served.
    connections.notes_summaries[kind] = (version, found)
    return found


@dataclass(frozen=True)
class NotesJoin:
    """Which annotations a listing shows: its targets' kind, the frame column holding their keys, and the
    annotation columns it gains."""

    kind: str
    key_column: str
    columns: tuple[str, ...] = ("tags", "n_comments")


SIGN_OFF_COLUMNS = ("signoff_grade", "signoff_by", "signoff_at", "signoff_reason")


async def annotate(connections: Connections, frame: pd.DataFrame, join: NotesJoin) -> pd.DataFrame:
    """``frame`` with the annotation columns of its targets."""
    found = await summary(connections, join.kind) if len(frame) else None  # no rows: nothing to ask
    return attach(frame, found, join.key_column, join.columns)


async def annotated(
    connections: Connections, reading: Awaitable[pd.DataFrame], join: NotesJoin
) -> pd.DataFrame:
    """What ``reading`` returns with the annotation columns: the listing and the notes are read at once, so
    the notes cost no extra wait."""
    frame, found = await asyncio.gather(reading, summary(connections, join.kind))
    return attach(frame, found, join.key_column, join.columns)


async def annotate_page(connections: Connections, page: Page, join: NotesJoin) -> Page:
    return dataclasses.replace(page, rows=await annotate(connections, page.rows, join))


async def resolve(connections: Connections, filters: F) -> F:
    """``filters`` with its note filter (``tag``/``label``) turned into the keys of the targets it keeps."""
    spec = filters.note_filter
    if spec is None:
        return filters
    wanted = getattr(filters, spec.field)
    if wanted is None or filters.note_keys is not None:  # resolved already: an export keeps its start's keys
        return filters
    found = await summary(connections, spec.target_kind)
    keys: tuple[str, ...] = ()
    if found is not None and len(found):
        if spec.field == "tag":
            mask = found["tags"].str.split(",").map(lambda tags: wanted in tags)
        else:
            mask = found["label"] == wanted
        keys = tuple(found.index[mask.fillna(False).astype(bool)])
    return dataclasses.replace(filters, note_keys=NoteKeys(keys))


async def comments_on(connections: Connections, targets: Mapping[str, Iterable[str]]) -> pd.DataFrame:
    """The comments on these targets (target kind -> keys), as events; none when the notes cannot be
    read. One query for every kind."""
    events = await read_events(connections, EventQuery(actions=("comment",)))
    if events is None or not len(events):
        return events_frame([])
    keep = pd.Series(False, index=events.index)
    for kind, keys in targets.items():
        keep |= (events["target_kind"] == kind) & events["target"].isin(list(keys))
    return events[keep].reset_index(drop=True)


async def sign_off_of(connections: Connections, kind: str, key: str, grade: str) -> dict[str, Any]:
    """The sign-off fields of one QA summary: the sign-off in force (None where there is none or the notes
    cannot be read) and ``final_grade``."""
    found = await summary(connections, kind)
    values: dict[str, Any] = dict.fromkeys(SIGN_OFF_COLUMNS)
    if found is not None and key in found.index:
        row = found.loc[key]
        for name in SIGN_OFF_COLUMNS:
            value = row[name]
            values[name] = (
                None if pd.isna(value) else (value.to_pydatetime() if name == "signoff_at" else str(value))
            )
    values["final_grade"] = values["signoff_grade"] or grade
    return values
