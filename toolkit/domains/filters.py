"""What an area's listings keep: its filters as one typed object, and clear errors for values nobody has.

Each listable area declares a frozen ``Filters`` subclass whose fields are its ``list()`` keyword arguments
and whose ``apply`` adds them to the area's ``Select``. ``list()``, ``page()`` and the QA listings all go
through it, so the same filter means the same rows everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self

from ..arguments import check_choices
from ..db.base import Backend, Catalog
from ..errors import ValidationError
from .query import Select


@dataclass(frozen=True)
class Vocabulary:
    """A filter whose values come from a vocabulary: ``field`` filters ``table.column``, and ``values`` are
    the ones the pipeline defines (valid even where no row holds them yet)."""

    field: str
    table: str
    column: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class NoteFilter:
    """A filter answered by the notes database (``tag``, ``label``): the targets it keeps are looked up
    there first (``notes.read.resolve``), then ``column`` (the target's key, e.g. ``i.path``) is kept to
    them."""

    field: str
    target_kind: str
    column: str


@dataclass(frozen=True)
class NoteKeys:
    """The target keys a note filter selected. Its repr (part of the result cache's key) is a digest, so a
    cached listing is reused only while the same targets carry the tag or label."""

    keys: tuple[str, ...]

    def __repr__(self) -> str:
        digest = hashlib.blake2b("\x00".join(self.keys).encode(), digest_size=12).hexdigest()
        return f"NoteKeys({len(self.keys)}, {digest})"


@dataclass(frozen=True)
class Filters:
    """Base of the areas' filter objects (fields: the filters; ``apply``: their SQL; ``vocabularies``: the
    filters ``explain`` checks when nothing matched; ``note_filter``: the one answered by the notes)."""

    vocabularies: ClassVar[tuple[Vocabulary, ...]] = ()
    note_filter: ClassVar[NoteFilter | None] = None
    # The keys the note filter selected, set by notes.read.resolve (never by a caller).
    note_keys: NoteKeys | None = field(default=None, kw_only=True)

    @classmethod
    def names(cls) -> list[str]:
        """The filters a caller may set."""
        return [f.name for f in fields(cls) if f.name != "note_keys"]

    @classmethod
    def of(cls, value: Filters | Mapping[str, Any] | None) -> Self:
        """``value`` as this area's filters: an instance, a mapping of filter names to values, or None."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Filters):
            raise ValidationError(f"these are {type(value).__name__}, not {cls.__name__}")
        if not isinstance(value, Mapping):
            raise ValidationError(
                f"filters must be a {cls.__name__} or a dict of filter values, not {value!r}"
            )
        known = cls.names()
        unknown = sorted(str(k) for k in value if k not in known)
        if unknown:
            raise ValidationError(f"unknown filter(s) {', '.join(unknown)}; filters here: {', '.join(known)}")
        return cls(**{str(k): v for k, v in value.items()})

    def apply(self, q: Select, catalog: Catalog) -> Select:
        raise NotImplementedError

    def apply_note_keys(self, q: Select, catalog: Catalog) -> Select:
        """Keep the targets the note filter selected (one bound JSON list, any length)."""
        spec = self.note_filter
        if spec is None or getattr(self, spec.field) is None:
            return q
        if self.note_keys is None:
            raise RuntimeError(f"the {spec.field} filter was not resolved against the notes database")
        clause, params = catalog.dialect.in_list(spec.column, self.note_keys.keys)
        return q.filter(clause, *params)

    async def explain(self, db: Backend) -> None:
        """Called when these filters matched nothing: raise ``ValidationError`` where a value is unknown."""
        for vocabulary in self.vocabularies:
            value = getattr(self, vocabulary.field)
            if value is not None:
                asked = check_choices(value, vocabulary.field) or []
                await explain_empty(db, vocabulary.table, vocabulary.column, asked, vocabulary.values)


async def explain_empty(
    db: Backend, table: str, column: str, asked: list[str], always_valid: Iterable[str] = ()
) -> None:
    """An empty answer to a filter on an unknown value is a typo, not "nothing": say which values exist.

    ``always_valid`` are values the pipeline defines (an empty stage is a fine answer); only a value neither
    defined nor present in the table is refused. Called only when a filtered answer came back empty.
    """
    if column not in db.catalog.columns(table):
        return
    rows = await db.fetch_rows(f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL LIMIT 200")
    known = sorted({str(r[0]) for r in rows} | set(always_valid))
    unknown = [v for v in asked if v not in known]
    if unknown:
        raise ValidationError(
            f"unknown {column} {', '.join(map(repr, unknown))} for {table}; values in this database: "
            f"{', '.join(known) or 'none'}"
        )
