"""Annotations as events (pure: validation, events, the current state derived from them; no I/O).

The notes store is append-only. Every comment, tag, untag, sign-off, cleared sign-off and label is one event,
and what is current is derived from the events: a tag is on while its newest tag/untag event is a tag, the
sign-off is the newest sign-off event unless a clear came after it, and the label is the newest one. Events
are ordered by ``(created_at, ordinal, event_id)``. ``ordinal`` is an event's place in its batch, so a batch
that tags and then untags leaves the tag off. The order uses nothing local to one database, so two sites
that import the same events derive the same state.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ValidationError
from ..records import Record
from ..vocab import GRADES

# What can be annotated: the kind a target names, and the record field that names it.
TARGET_KINDS: Final = ("image", "ms", "source", "job", "cal")
ACTIONS: Final = ("comment", "tag", "untag", "sign_off", "clear_sign_off", "classify")
# What notes.list() calls each current annotation (its ``kind`` column).
ANNOTATION_KINDS: Final = ("comment", "tag", "sign_off", "label")
DEFAULT_LABELS: Final = ("transient", "variable", "artefact", "known", "unsure")

MAX_TAG = 64
MAX_TEXT = 10_000  # a comment, reason or label note
MAX_AUTHOR = 64
MAX_KEY = 4_096  # a target's key (a path)
_TAG = re.compile(r"[^\s,]+")  # a comma would make the tags column ("a,b") ambiguous

EVENT_FIELDS: Final = (
    "event_id",
    "created_at",
    "ordinal",
    "author",
    "target_kind",
    "target",
    "action",
    "text",
    "tag",
    "grade",
    "label",
)


@dataclass(frozen=True)
class NoteEvent(Record):
    """One change to one target, as written to the notes database. ``target`` is the target's key: the path
    of an image, MS or cal table, a source's id, a job's run id."""

    _title_field: ClassVar[str] = "action"

    event_id: str
    created_at: datetime
    ordinal: int
    author: str
    target_kind: str
    target: str
    action: str
    text: str | None = None
    tag: str | None = None
    grade: str | None = None
    label: str | None = None

    def title(self) -> str:
        return f"{self.action} on {self.target_kind} {self.target} by {self.author}"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["created_at"] = iso(self.created_at)
        return out

    @classmethod
    def from_json(cls, data: Any, labels: Sequence[str] | None = None) -> NoteEvent:
        """An event read from an export, checked as strictly as one made here (``ValidationError`` names
        the field)."""
        if not isinstance(data, Mapping):
            raise ValidationError("an event must be a JSON object")
        unknown = set(data) - set(EVENT_FIELDS)
        if unknown:
            raise ValidationError(f"unknown event field(s) {sorted(unknown)}")
        missing = [n for n in ("event_id", "created_at", "ordinal", "author", "target_kind", "target", "action")
                   if data.get(n) is None]  # fmt: skip
        if missing:
            raise ValidationError(f"event field(s) {missing} missing")
        for name in ("event_id", "created_at", "author", "target_kind", "target", "action"):
            if not isinstance(data[name], str):
                raise ValidationError(f"event field {name} must be text, got {data[name]!r}")
        ordinal = data["ordinal"]
        if isinstance(ordinal, bool) or not isinstance(ordinal, int) or not 0 <= ordinal < 2**31:
            raise ValidationError(f"event field ordinal must be a whole number from 0, got {ordinal!r}")
        event_id = data["event_id"]
        if not re.fullmatch(r"[0-9a-f]{32}", event_id):
            raise ValidationError(f"event_id {event_id!r} is not 32 hex digits")
        try:
            created = datetime.fromisoformat(data["created_at"])
        except ValueError as exc:
            raise ValidationError(f"created_at {data['created_at']!r} is not an ISO-8601 time") from exc
        if created.tzinfo is None:
            raise ValidationError(f"created_at {data['created_at']!r} has no time zone (times are UTC)")
        event = make_event(
            data["action"],
            data["target_kind"],
            check_key(data["target"]),
            author=check_author(data["author"]),
            created_at=created.astimezone(UTC),
            ordinal=ordinal,
            event_id=event_id,
            text=data.get("text"),
            tag=data.get("tag"),
            grade=data.get("grade"),
            label=data.get("label"),
            labels=labels,
        )
        return event


def iso(moment: datetime) -> str:
    """UTC, microseconds, fixed width: text order is time order (SQLite stores the time as this text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace("Z", "+00:00")


def now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------ checking
def check_kind(kind: Any) -> str:
    if kind not in TARGET_KINDS:
        raise ValidationError(f"unknown target kind {kind!r}; targets are {', '.join(TARGET_KINDS)}")
    return str(kind)


def check_key(key: Any) -> str:
    if not isinstance(key, str) or not key.strip():
        raise ValidationError(f"a target's key must be non-empty text, got {key!r}")
    if len(key) > MAX_KEY or "\x00" in key:
        raise ValidationError(f"a target's key must be at most {MAX_KEY} characters without NUL")
    return key


def _check_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{what} must be non-empty text, got {value!r}")
    if len(value) > MAX_TEXT:
        raise ValidationError(f"{what} must be at most {MAX_TEXT:,} characters, got {len(value):,}")
    if "\x00" in value:
        raise ValidationError(f"{what} must not contain NUL characters")
    return value


def check_comment(text: Any) -> str:
    return _check_text(text, "a comment")


def check_reason(reason: Any) -> str:
    return _check_text(reason, "a sign-off needs a reason, which")


def check_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not tag:
        raise ValidationError(f"a tag must be non-empty text, got {tag!r}")
    if len(tag) > MAX_TAG:
        raise ValidationError(f"a tag must be at most {MAX_TAG} characters, got {len(tag)}: {tag[:20]!r}...")
    if not _TAG.fullmatch(tag):
        raise ValidationError(f"a tag must have no whitespace or commas, got {tag!r}")
    return tag


def check_tags(tags: Iterable[Any]) -> tuple[str, ...]:
    checked = tuple(dict.fromkeys(check_tag(t) for t in tags))
    if not checked:
        raise ValidationError("name at least one tag")
    return checked


def check_grade(grade: Any) -> str:
    if grade not in GRADES:
        raise ValidationError(f"unknown grade {grade!r}; a sign-off grade is one of {', '.join(GRADES)}")
    return str(grade)


def check_label(label: Any, labels: Sequence[str] | None = None) -> str:
    allowed = tuple(labels) if labels else DEFAULT_LABELS
    if label not in allowed:
        raise ValidationError(
            f"unknown label {label!r}; labels are {', '.join(allowed)} (setting note_labels)"
        )
    return str(label)


def check_labels(labels: Any) -> tuple[str, ...]:
    """The label vocabulary a site configures: tags' rules apply to each label."""
    items = labels.split(",") if isinstance(labels, str) else list(labels)
    checked = tuple(dict.fromkeys(check_tag(str(item).strip()) for item in items if str(item).strip()))
    if not checked:
        raise ValueError("name at least one label")
    return checked


def check_author(author: Any) -> str:
    if not isinstance(author, str) or not author.strip() or len(author) > MAX_AUTHOR or "\x00" in author:
        raise ValidationError(f"an author must be 1 to {MAX_AUTHOR} characters of text, got {author!r}")
    return author.strip()


def make_event(
    action: str,
    target_kind: str,
    target: str,
    *,
    author: str,
    created_at: datetime,
    ordinal: int,
    event_id: str | None = None,
    text: Any = None,
    tag: Any = None,
    grade: Any = None,
    label: Any = None,
    labels: Sequence[str] | None = None,
) -> NoteEvent:
    """An event with exactly the fields its action uses, each checked."""
    check_kind(target_kind)
    values: dict[str, Any] = {}
    if action == "comment":
        values["text"] = check_comment(text)
    elif action in ("tag", "untag"):
        values["tag"] = check_tag(tag)
    elif action == "sign_off":
        values["grade"] = check_grade(grade)
        values["text"] = check_reason(reason=text)
    elif action == "clear_sign_off":
        values["text"] = check_reason(text)
    elif action == "classify":
        if target_kind != "source":
            raise ValidationError(f"labels are for sources, not for a {target_kind}")
        values["label"] = check_label(label, labels)
        values["text"] = None if text is None else _check_text(text, "a label's note")
    else:
        raise ValidationError(f"unknown action {action!r}; actions are {', '.join(ACTIONS)}")
    for name in ("text", "tag", "grade", "label"):
        given = {"text": text, "tag": tag, "grade": grade, "label": label}[name]
        if name not in values and given is not None:
            raise ValidationError(f"a {action} event carries no {name}")
    return NoteEvent(
        event_id=event_id or uuid.uuid4().hex,
        created_at=created_at,
        ordinal=ordinal,
        author=author,
        target_kind=target_kind,
        target=target,
        action=action,
        **values,
    )


# ---------------------------------------------------------------------- current state (pure pandas)
EVENT_KINDS: dict[str, str] = {
    "event_id": "str",
    "ordinal": "Int64",
    "author": "str",
    "target_kind": "str",
    "target": "str",
    "action": "str",
    "text": "str",
    "tag": "str",
    "grade": "str",
    "label": "str",
}


def events_frame(rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Rows in ``EVENT_FIELDS`` order (or mappings) -> the events frame, oldest first, times UTC."""
    frame = (
        pd.DataFrame(list(rows), columns=list(EVENT_FIELDS))
        if rows
        else pd.DataFrame({name: [] for name in EVENT_FIELDS})
    )
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True, format="ISO8601").dt.as_unit("us")
    frame = frame.astype(EVENT_KINDS)
    return frame.sort_values(["created_at", "ordinal", "event_id"], kind="stable").reset_index(drop=True)


def _newest(events: pd.DataFrame, actions: tuple[str, ...], by: list[str]) -> pd.DataFrame:
    """The newest event of ``actions`` per ``by`` group (``events`` is oldest first)."""
    chosen = events[events["action"].isin(actions)]
    return chosen.drop_duplicates(by, keep="last")


def current_tags(events: pd.DataFrame) -> pd.DataFrame:
    newest = _newest(events, ("tag", "untag"), ["target_kind", "target", "tag"])
    return newest[newest["action"] == "tag"]


def current_sign_offs(events: pd.DataFrame) -> pd.DataFrame:
    newest = _newest(events, ("sign_off", "clear_sign_off"), ["target_kind", "target"])
    return newest[newest["action"] == "sign_off"]


def current_labels(events: pd.DataFrame) -> pd.DataFrame:
    return _newest(events, ("classify",), ["target_kind", "target"])


LIST_COLUMNS: Final = (
    "kind", "target_kind", "target", "author", "created_at", "text", "tag", "grade", "label", "event_id"
)  # fmt: skip


def current_annotations(events: pd.DataFrame) -> pd.DataFrame:
    """One row per current annotation: every comment, each tag that is on, the sign-off in force, the
    label; newest first."""
    parts = [
        events[events["action"] == "comment"].assign(kind="comment"),
        current_tags(events).assign(kind="tag"),
        current_sign_offs(events).assign(kind="sign_off"),
        current_labels(events).assign(kind="label"),
    ]
    out = pd.concat(parts, ignore_index=True)
    out = out.sort_values(["created_at", "ordinal", "event_id"], ascending=False, kind="stable")
    out["kind"] = out["kind"].astype("str")
    return out[list(LIST_COLUMNS)].reset_index(drop=True)


SUMMARY_KINDS: Final[Mapping[str, str]] = {
    "tags": "str", "n_comments": "Int64", "signoff_grade": "str", "signoff_by": "str",
    "signoff_at": "datetime64[us, UTC]", "signoff_reason": "str", "label": "str",
}  # fmt: skip
SUMMARY_COLUMNS: Final = tuple(SUMMARY_KINDS)
# What a target without annotations shows (the other columns: NA)
UNANNOTATED: Final[Mapping[str, Any]] = {"tags": "", "n_comments": 0}


def summary_by_target(events: pd.DataFrame) -> pd.DataFrame:
    """Per target key (the index): its tags ("a,b", sorted), comment count, sign-off and label.

    One pass over the events (oldest first), then an Arrow take per column: the grouped pandas form cost
    ~17 ms even for the few events of one write, and a listing waits for it after every note.
    """
    comments: dict[str, int] = {}
    tags: dict[str, dict[str, None]] = {}
    sign_off: dict[str, int] = {}  # target -> position of the sign-off in force
    label: dict[str, int] = {}  # target -> position of the newest label
    columns = (events["target"].tolist(), events["action"].tolist(), events["tag"].tolist())
    for position, (target, action, tag) in enumerate(zip(*columns, strict=True)):
        if action == "comment":
            comments[target] = comments.get(target, 0) + 1
        elif action == "tag":
            tags.setdefault(target, {})[tag] = None
        elif action == "untag":
            tags.setdefault(target, {}).pop(tag, None)
        elif action == "sign_off":
            sign_off[target] = position
        elif action == "clear_sign_off":
            sign_off.pop(target, None)
        elif action == "classify":
            label[target] = position
    keys = list(dict.fromkeys(columns[0]))
    signed = np.array([sign_off.get(key, -1) for key in keys], dtype=np.intp)
    labelled = np.array([label.get(key, -1) for key in keys], dtype=np.intp)

    def take(column: str, positions: np.ndarray[Any, np.dtype[np.intp]]) -> Any:
        return events[column].array.take(positions, allow_fill=True)

    out = pd.DataFrame(
        {
            "tags": [",".join(sorted(tags.get(key, ()))) for key in keys],
            "n_comments": [comments.get(key, 0) for key in keys],
            "signoff_grade": take("grade", signed),
            "signoff_by": take("author", signed),
            "signoff_at": take("created_at", signed),
            "signoff_reason": take("text", signed),
            "label": take("label", labelled),
        },
        index=pd.Index(keys, name="target", dtype="str"),
    )
    return out.astype(dict(SUMMARY_KINDS))


def merge_summaries(old: pd.DataFrame, recomputed: pd.DataFrame) -> pd.DataFrame:
    """``old`` with the rows of the targets in ``recomputed`` replaced (or added)."""
    if not len(recomputed):
        return old
    kept = old[~old.index.isin(recomputed.index)]
    return pd.concat([kept, recomputed]) if len(kept) else recomputed


def with_final_grade(frame: pd.DataFrame) -> pd.DataFrame:
    """``final_grade``: the sign-off where there is one, otherwise the computed ``grade``."""
    frame["final_grade"] = frame["signoff_grade"].fillna(frame["grade"].astype("str"))
    return frame


def attach(
    frame: pd.DataFrame, summary: pd.DataFrame | None, key_column: str, columns: Sequence[str]
) -> pd.DataFrame:
    """``frame`` with ``columns`` of the summary joined on ``key_column``.

    ``summary`` None means the notes could not be read: the columns are NA. Targets without annotations get
    no tags (""), no comments (0) and no sign-off or label (NA).
    """
    # One hash lookup of the keys, then an Arrow take per column: a reindex and astype per column cost
    # ~1 ms each on a few hundred rows, and listings are asked for far more often than notes change.
    readable = summary is not None
    if summary is None:
        summary = pd.DataFrame({name: [] for name in SUMMARY_COLUMNS}).astype(dict(SUMMARY_KINDS))
        positions = np.full(len(frame), -1)
    else:
        # Arrow's hash lookup: 0.3 ms for 10,000 keys where pandas' get_indexer takes 1.2 ms
        keys = pa.array(frame[key_column].astype("str"))
        found = pc.index_in(keys, value_set=pa.array(summary.index.to_numpy(dtype=object), type=pa.string()))
        positions = found.fill_null(-1).to_numpy(zero_copy_only=False)
    for name in columns:
        values = summary[name].array.take(positions, allow_fill=True)
        frame[name] = values.fillna(UNANNOTATED[name]) if readable and name in UNANNOTATED else values
    return frame
