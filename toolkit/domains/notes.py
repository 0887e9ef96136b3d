"""``client.notes``: comments, tags, sign-offs and labels on the pipeline's products, shared by a team.

The toolkit's one write path. Annotations go to its own notes database (``notes_db``), never to the
pipeline's. Every call is a transaction: a batch (``async with notes.batch() as b``) writes all its
operations or none. Targets are checked against the products database first, with one query per kind of
target, and a target that is not there raises ``RecordNotFoundError`` before anything is written.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import pandas as pd

from ..arguments import TimeLike, to_utc_timestamp
from ..db.base import Backend
from ..db.connections import Connections
from ..errors import FileNotAccessibleError, RecordNotFoundError, ValidationError
from ..files import check_output_path, write_atomically
from ..notes import model
from ..notes.model import NoteEvent
from ..notes.query import EventQuery
from ..notes.read import read_events
from ..records import CalTable, Image, Job, MeasurementSet, Record, Source
from . import jobs as jobs_domain
from .query import Select

# What notes.import_ does with events whose target this site does not have.
MissingTargets = Literal["error", "skip"]
TargetLike = Image | MeasurementSet | Source | Job | CalTable | tuple[str, int | str]
# Operations in one batch; a night is a few hundred images, a season's re-grade a few tens of thousands.
MAX_BATCH = 100_000
# An import reads at most this many bytes per line and this many lines.
MAX_IMPORT_LINE = 1_000_000
MAX_IMPORT_EVENTS = 1_000_000
_CHUNK = 5_000  # target keys checked per query
_ENTITIES = {"image": "image", "ms": "measurement set", "source": "source", "job": "job", "cal": "cal table"}


def target_of(target: Any) -> tuple[str, int | str]:
    """A record or a ``(kind, identifier)`` pair -> (kind, identifier) (pure; existence is checked later)."""
    if isinstance(target, Image):
        return "image", target.path
    if isinstance(target, MeasurementSet):
        return "ms", target.path
    if isinstance(target, Source):
        return "source", target.source_id
    if isinstance(target, Job):
        if target.run_id is not None:
            return "job", target.run_id
        if target.id is not None:
            return "job", target.id
        raise ValidationError("this job has neither a run id nor an id to annotate it by")
    if isinstance(target, CalTable):
        return "cal", target.path
    if isinstance(target, Record):
        raise ValidationError(f"a {type(target).__name__} cannot be annotated; targets are {_TARGET_HELP}")
    if not isinstance(target, tuple | list) or len(target) != 2:
        raise ValidationError(
            f"a target is a record from a get call or a pair such as ('image', 12), not {target!r}"
        )
    kind, ident = target
    model.check_kind(kind)
    if kind in ("image", "job") and isinstance(ident, int) and not isinstance(ident, bool):
        if not 0 <= ident < 2**63:
            raise ValidationError(f"{ident} cannot be an id")
        return kind, ident
    return kind, model.check_key(ident)


_TARGET_HELP = (
    "Image, MeasurementSet, Source, Job and CalTable records, or the pairs ('image', id_or_path), ('ms', path), "
    "('source', source_id), ('job', run_id), ('cal', path)"
)


async def _rows(
    db: Backend, columns: list[str], source: str, column: str, values: Sequence[Any]
) -> list[Any]:
    found: list[Any] = []
    for start in range(0, len(values), _CHUNK):
        clause, params = db.catalog.dialect.in_list(column, values[start : start + _CHUNK])
        sql, bound = Select(columns, source).filter(clause, *params).build()
        found.extend(await db.fetch_rows(sql, bound))
    return found


async def resolve_targets(
    connections: Connections, targets: Iterable[tuple[str, int | str]]
) -> dict[tuple[str, int | str], str]:
    """Each (kind, identifier) -> the target's key; ``RecordNotFoundError`` names the first one missing.

    One query per kind (per 5,000 identifiers); jobs, whose run ids may be derived from MS names, one each.
    """
    wanted: dict[str, list[int | str]] = {}
    for kind, ident in dict.fromkeys(targets):
        wanted.setdefault(kind, []).append(ident)
    keys: dict[tuple[str, int | str], str] = {}
    for kind, idents in wanted.items():
        if kind == "cal":
            db = await connections.require_calibration()
        else:
            db = await connections.products()
        if kind == "image":
            ids = [i for i in idents if isinstance(i, int)]
            paths = [i for i in idents if isinstance(i, str)]
            for id_, path in await _rows(db, ["i.id", "i.path"], "images AS i", "i.id", ids):
                keys[("image", int(id_))] = str(path)
            for (path,) in await _rows(db, ["i.path"], "images AS i", "i.path", paths):
                keys[("image", str(path))] = str(path)
        elif kind == "ms":
            for (path,) in await _rows(db, ["m.path"], "ms_index AS m", "m.path", idents):
                keys[("ms", str(path))] = str(path)
        elif kind == "cal":
            for (path,) in await _rows(db, ["c.path"], "caltables AS c", "c.path", idents):
                keys[("cal", str(path))] = str(path)
        elif kind == "source":
            for (source_id,) in await _rows(
                db, ["DISTINCT p.source_id"], "photometry AS p", "p.source_id", idents
            ):
                keys[("source", str(source_id))] = str(source_id)
        else:
            keys.update(await _resolve_jobs(db, idents))
        for ident in idents:
            if (kind, ident) not in keys:
                missing = sum((kind, i) not in keys for i in idents)
                hint = f"{missing} of the {len(idents)} {kind} targets are not in the products database; nothing was written"
                raise RecordNotFoundError(_ENTITIES[kind], ident, hint)
    return keys


async def _resolve_jobs(db: Backend, idents: Sequence[int | str]) -> dict[tuple[str, int | str], str]:
    async def one(ident: int | str) -> tuple[int | str, str | None]:
        try:
            sql, params = jobs_domain.get_select(db.catalog, ident).build()
        except RecordNotFoundError:
            return ident, None
        frame = await db.fetch_frame(sql, params, jobs_domain.KINDS, post=jobs_domain.add_job_columns)
        if frame.empty or pd.isna(frame["run_id"].iloc[0]):
            return ident, None
        return ident, str(frame["run_id"].iloc[0])

    found = await asyncio.gather(*(one(i) for i in idents))
    return {("job", ident): key for ident, key in found if key is not None}


@dataclass(frozen=True)
class _Operation:
    action: str
    target: tuple[str, int | str]
    text: str | None = None
    tag: str | None = None
    grade: str | None = None
    label: str | None = None


class NotesBatch:
    """Operations collected by ``async with notes.batch() as b:`` (``with client.notes.batch() as b:`` in
    the blocking client) and written in one transaction when the block ends without an error.

    Each method checks its arguments at once (``ValidationError``) and returns nothing; the targets are
    checked, and the events written, when the block ends. An error inside the block writes nothing.
    """

    def __init__(self, notes: Notes) -> None:
        self._notes = notes
        self._operations: list[_Operation] = []
        self.events: tuple[NoteEvent, ...] = ()  # what was written, once the block has ended

    def _add(self, operation: _Operation) -> None:
        if len(self._operations) >= MAX_BATCH:
            raise ValidationError(f"a batch holds at most {MAX_BATCH:,} operations; split it")
        self._operations.append(operation)

    def comment(self, target: TargetLike, text: str) -> None:
        self._add(_Operation("comment", target_of(target), text=model.check_comment(text)))

    def tag(self, target: TargetLike, *tags: str) -> None:
        resolved = target_of(target)
        for tag in model.check_tags(tags):
            self._add(_Operation("tag", resolved, tag=tag))

    def untag(self, target: TargetLike, *tags: str) -> None:
        resolved = target_of(target)
        for tag in model.check_tags(tags):
            self._add(_Operation("untag", resolved, tag=tag))

    def sign_off(self, target: TargetLike, grade: str, reason: str) -> None:
        self._add(_Operation("sign_off", target_of(target), text=model.check_reason(reason),
                             grade=model.check_grade(grade)))  # fmt: skip

    def clear_sign_off(self, target: TargetLike, reason: str) -> None:
        self._add(_Operation("clear_sign_off", target_of(target), text=model.check_reason(reason)))

    def classify(self, target: TargetLike, label: str, note: str | None = None) -> None:
        resolved = target_of(target)
        if resolved[0] != "source":
            raise ValidationError(f"labels are for sources, not for a {resolved[0]}")
        label = model.check_label(label, self._notes._labels())
        self._add(_Operation("classify", resolved, text=None if note is None else model.check_comment(note),
                             label=label))  # fmt: skip

    def __len__(self) -> int:
        return len(self._operations)

    async def commit(self) -> tuple[NoteEvent, ...]:
        """Check every target, then write every operation in one transaction (the end of the block does
        this)."""
        operations, self._operations = self._operations, []
        if not operations:
            return ()
        self.events = await self._notes._write(operations)
        return self.events

    async def __aenter__(self) -> NotesBatch:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            await self.commit()
        else:
            self._operations = []


class Notes:
    """``client.notes``: record and read judgements on images, MS, sources, jobs and cal tables.

    Targets are records returned by ``get`` calls or pairs ``("image", id_or_path)``, ``("ms", path)``,
    ``("source", source_id)``, ``("job", run_id)``, ``("cal", path)``. The author is the ``user`` setting
    (``CONTIMG_USER``) or the login name; times are UTC.
    """

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def _labels(self) -> tuple[str, ...]:
        return self._connections.settings.note_labels

    async def _write(self, operations: Sequence[_Operation]) -> tuple[NoteEvent, ...]:
        keys = await resolve_targets(self._connections, [op.target for op in operations])
        author = self._connections.settings.author()
        created = model.now()
        events = tuple(
            model.make_event(
                op.action, op.target[0], keys[op.target], author=author, created_at=created, ordinal=i,
                text=op.text, tag=op.tag, grade=op.grade, label=op.label, labels=self._labels(),
            )
            for i, op in enumerate(operations)
        )  # fmt: skip
        await self._connections.notes().append(events)
        return events

    async def _one(self, operation: _Operation) -> NoteEvent:
        (event,) = await self._write([operation])
        return event

    # ----------------------------------------------------------------------------------- writing
    async def comment(self, target: TargetLike, text: str) -> NoteEvent:
        """Add a comment (1 to 10,000 characters)."""
        return await self._one(_Operation("comment", target_of(target), text=model.check_comment(text)))

    async def tag(self, target: TargetLike, *tags: str) -> tuple[NoteEvent, ...]:
        """Put tags on a target. A tag is up to 64 characters with no whitespace or commas."""
        batch = self.batch()
        batch.tag(target, *tags)
        return await batch.commit()

    async def untag(self, target: TargetLike, *tags: str) -> tuple[NoteEvent, ...]:
        """Take tags off a target (a new event; the tag's history stays)."""
        batch = self.batch()
        batch.untag(target, *tags)
        return await batch.commit()

    async def sign_off(self, target: TargetLike, grade: str, reason: str) -> NoteEvent:
        """Sign off a target with a grade (good, warn or fail) and a reason. The sign-off overrides the
        computed QA grade (``final_grade`` in the QA listings) until it is cleared or replaced."""
        batch = self.batch()
        batch.sign_off(target, grade, reason)
        (event,) = await batch.commit()
        return event

    async def clear_sign_off(self, target: TargetLike, reason: str) -> NoteEvent:
        """Withdraw the sign-off in force (a new event with its reason); the computed grade is final again."""
        batch = self.batch()
        batch.clear_sign_off(target, reason)
        (event,) = await batch.commit()
        return event

    async def classify(self, target: TargetLike, label: str, note: str | None = None) -> NoteEvent:
        """Label a source (transient, variable, artefact, known or unsure by default; setting
        ``note_labels``), with an optional note. The newest label is the source's label."""
        batch = self.batch()
        batch.classify(target, label, note)
        (event,) = await batch.commit()
        return event

    def batch(self) -> NotesBatch:
        """``async with notes.batch() as b:`` then ``b.comment(...)``, ``b.sign_off(...)`` ...: written in
        one transaction when the block ends, all or nothing (an error in the block writes nothing). At most
        100,000 operations."""
        return NotesBatch(self)

    # ----------------------------------------------------------------------------------- reading
    async def list(
        self,
        *,
        kind: str | None = None,
        target: TargetLike | None = None,
        tag: str | None = None,
        author: str | None = None,
        since: TimeLike | None = None,
    ) -> pd.DataFrame:
        """One row per current annotation, newest first: ``kind`` (comment, tag, sign_off or label),
        ``target_kind``, ``target``, ``author``, ``created_at`` and the ``text`` (comment, or the reason of a
        sign-off), ``tag``, ``grade`` or ``label``.

        ``kind`` keeps one kind of annotation, or, given image, ms, source, job or cal, one kind of target;
        ``target`` one target; ``tag`` the tags of that name; ``author`` one author; ``since`` annotations
        made since then.
        """
        query, keep = await self._query(kind=kind, target=target, author=author)
        events = await read_events(self._connections, query)
        if events is None:
            events = model.events_frame([])
        frame = model.current_annotations(events)
        if keep is not None:
            frame = frame[frame["kind"] == keep]
        if tag is not None:
            frame = frame[(frame["kind"] == "tag") & (frame["tag"] == model.check_tag(tag))]
        if since is not None:
            frame = frame[frame["created_at"] >= to_utc_timestamp(since, "since")]
        return frame.reset_index(drop=True)

    async def history(self, target: TargetLike) -> pd.DataFrame:
        """Every change ever made to one target, oldest first (``action``: comment, tag, untag, sign_off,
        clear_sign_off or classify)."""
        query, _ = await self._query(target=target)
        events = await read_events(self._connections, query)
        return model.events_frame([]) if events is None else events

    async def _query(
        self, *, kind: str | None = None, target: TargetLike | None = None, author: str | None = None
    ) -> tuple[EventQuery, str | None]:
        target_kind, keep, targets = None, None, None
        if kind is not None:
            if kind in model.ANNOTATION_KINDS:
                keep = kind
            elif kind in model.TARGET_KINDS:
                target_kind = kind
            else:
                raise ValidationError(
                    f"unknown kind {kind!r}: an annotation kind ({', '.join(model.ANNOTATION_KINDS)}) or a "
                    f"target kind ({', '.join(model.TARGET_KINDS)})"
                )
        if target is not None:
            resolved = target_of(target)
            if target_kind is not None and resolved[0] != target_kind:
                raise ValidationError(f"kind {kind!r} and a {resolved[0]} target select nothing together")
            key = (await resolve_targets(self._connections, [resolved]))[resolved]
            target_kind, targets = resolved[0], (key,)
        if author is not None:
            author = model.check_author(author)
        return EventQuery(target_kind=target_kind, targets=targets, author=author), keep

    # ------------------------------------------------------------------------------- moving notes
    async def export(self, path: str | os.PathLike[str], *, since: TimeLike | None = None) -> int:
        """Write every event (or those since ``since``) to ``path`` as JSON Lines, oldest first, atomically;
        returns how many. An existing SQLite file is never overwritten."""
        target = check_output_path(path, (".jsonl", ".ndjson"), "a notes export")
        start = None if since is None else to_utc_timestamp(since, "since").to_pydatetime()
        events = await read_events(self._connections, EventQuery(since=start))
        if events is None:
            events = model.events_frame([])
        lines = [
            json.dumps(_event_json(row), ensure_ascii=False, allow_nan=False)
            for row in events.to_dict("records")
        ]
        text = "".join(line + "\n" for line in lines)
        await asyncio.get_running_loop().run_in_executor(None, write_atomically, target, text)
        return len(lines)

    async def import_(
        self, path: str | os.PathLike[str], *, missing: MissingTargets = "error"
    ) -> NotesImport:
        """Add the events of a JSON Lines export; events already here (by id) are skipped, so importing a
        file twice changes nothing. Targets must exist in this site's products database: ``missing="error"``
        (the default) refuses the file and writes nothing; ``"skip"`` leaves their events out."""
        if missing not in ("error", "skip"):
            raise ValidationError(f"missing must be 'error' or 'skip', got {missing!r}")
        if (
            not isinstance(path, str | os.PathLike)
            or not isinstance(os.fspath(path), str)
            or not os.fspath(path)
        ):
            raise ValidationError(f"import_ reads a JSON Lines file named by a path, not {path!r}")
        source = Path(os.fspath(path))
        events = await asyncio.get_running_loop().run_in_executor(
            None, _read_events_file, source, self._labels()
        )
        keys: dict[tuple[str, int | str], str] = {}
        wanted = list(dict.fromkeys((e.target_kind, e.target) for e in events))
        if missing == "error":
            keys = await resolve_targets(self._connections, wanted)
        else:
            for pair in wanted:
                try:
                    keys.update(await resolve_targets(self._connections, [pair]))
                except RecordNotFoundError:
                    continue
        kept = [e for e in events if (e.target_kind, e.target) in keys]
        added = await self._connections.notes().append(kept) if kept else 0
        return NotesImport(read=len(events), added=added, already_present=len(kept) - added,
                           skipped=len(events) - len(kept))  # fmt: skip


@dataclass(frozen=True)
class NotesImport(Record):
    """What ``notes.import_`` did: events read, added, already present (by id) and skipped (``missing``)."""

    _title_field = "added"

    read: int
    added: int
    already_present: int
    skipped: int


def _event_json(row: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in model.EVENT_FIELDS:
        value = row[name]
        if name == "created_at":
            value = model.iso(value.to_pydatetime())
        elif name == "ordinal":
            value = int(value)
        elif value is None or pd.isna(value):
            value = None
        out[name] = value
    return out


def _read_events_file(path: Path, labels: Sequence[str]) -> list[NoteEvent]:
    try:
        regular = path.is_file()
    except OSError as exc:  # a name too long for the file system, a loop of links: is_file raises for these
        raise FileNotAccessibleError(f"cannot read {str(path)[:200]}: {exc.strerror or exc}") from exc
    if not regular:
        raise FileNotAccessibleError(f"{path} is not a file (an export of notes.export, JSON Lines)")
    events: list[NoteEvent] = []
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(iter(lambda: handle.readline(MAX_IMPORT_LINE + 1), b""), start=1):
                if len(raw) > MAX_IMPORT_LINE:
                    raise ValidationError(f"{path} line {number} is longer than {MAX_IMPORT_LINE:,} bytes")
                if not raw.strip():
                    continue
                if len(events) >= MAX_IMPORT_EVENTS:
                    raise ValidationError(f"{path} holds more than {MAX_IMPORT_EVENTS:,} events; split it")
                try:
                    data = json.loads(raw)
                    events.append(NoteEvent.from_json(data, labels))
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise ValidationError(f"{path} line {number} is not JSON ({exc})") from exc
                except ValidationError as exc:
                    raise ValidationError(f"{path} line {number}: {exc}") from exc
    except OSError as exc:
        raise FileNotAccessibleError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return events
