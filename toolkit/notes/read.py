"""Annotations joined into the read calls: one notes query per call, never one per row.

A listing asks the notes database once for the current state of the targets it returned (or of every
target of that kind, for a long listing) and joins it on the target's key. If the notes database is missing
or unreadable, the listing still answers, with those columns NA and one warning per client.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd

from ..db.connections import Connections
from ..domains.filters import Filters, NoteKeys
from ..domains.paging import Page
from ..errors import NotesUnavailableWarning, ToolkitError
from .model import attach, current_labels, current_tags, events_frame, summary_by_target
from .query import EventQuery

F = TypeVar("F", bound=Filters)
# Up to this many keys a listing asks for its own targets; beyond, for the whole kind (one query either way).
KEYS_PER_QUERY = 5_000


async def read_events(connections: Connections, query: EventQuery) -> pd.DataFrame | None:
    """The events ``query`` selects; None (after one warning per client) when they cannot be read.

    A notes database that does not exist yet is empty if it is the default one (nobody has written a note
    on this machine); a configured one that is missing is reported, since the path may be wrong.
    """
    store = connections.notes()
    try:
        events = await store.read(query)
    except ToolkitError as exc:
        _warn_once(connections, f"the notes database {store.location} cannot be read ({exc})")
        return None
    if events is None:
        _, configured = connections.settings.notes_location()
        if configured:
            _warn_once(
                connections,
                f"the notes database {store.location} does not exist yet (it is created by the first note "
                "written)",
            )
            return None
        return events_frame([])
    return events


def _warn_once(connections: Connections, message: str) -> None:
    if not connections.notes_warned:
        connections.notes_warned = True
        warnings.warn(f"{message}; annotation columns are NA", NotesUnavailableWarning, stacklevel=4)


async def summary(
    connections: Connections, kind: str, keys: Sequence[str] | None = None
) -> pd.DataFrame | None:
    """Per target of ``kind`` (the index: its key): tags, comment count, sign-off and label; None when the
    notes cannot be read."""
    wanted = None if keys is None or len(keys) > KEYS_PER_QUERY else tuple(dict.fromkeys(keys))
    events = await read_events(connections, EventQuery(target_kind=kind, targets=wanted))
    if events is None:
        return None
    if len(events) < 2_000:  # cheaper here than a thread crossing
        return summary_by_target(events)
    found: pd.DataFrame = await (await connections.products()).compute(summary_by_target, events)
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
    keys = [str(k) for k in frame[join.key_column].dropna().unique()] if len(frame) else []
    found = await summary(connections, join.kind, keys) if keys else None  # no rows: nothing to ask
    return attach(frame, found, join.key_column, join.columns)


async def annotate_page(connections: Connections, page: Page, join: NotesJoin) -> Page:
    return dataclasses.replace(page, rows=await annotate(connections, page.rows, join))


async def resolve(connections: Connections, filters: F) -> F:
    """``filters`` with its note filter (``tag``/``label``) turned into the keys of the targets it keeps."""
    spec = filters.note_filter
    if spec is None:
        return filters
    wanted = getattr(filters, spec.field)
    if wanted is None:
        return filters
    actions = ("tag", "untag") if spec.field == "tag" else ("classify",)
    events = await read_events(connections, EventQuery(target_kind=spec.target_kind, actions=actions))
    if events is None:
        keys: tuple[str, ...] = ()
    elif spec.field == "tag":
        current = current_tags(events)
        keys = tuple(current.loc[current["tag"] == wanted, "target"].unique())
    else:
        current = current_labels(events)
        keys = tuple(current.loc[current["label"] == wanted, "target"].unique())
    return dataclasses.replace(filters, note_keys=NoteKeys(keys))


async def sign_off_of(connections: Connections, kind: str, key: str, grade: str) -> dict[str, Any]:
    """The sign-off fields of one QA summary: the sign-off in force (None where there is none or the notes
    cannot be read) and ``final_grade``."""
    found = await summary(connections, kind, [key])
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
