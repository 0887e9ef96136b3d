"""What an area's listings keep: its filters as one typed object, and clear errors for values nobody has.

Each listable area declares a frozen ``Filters`` subclass whose fields are its ``list()`` keyword arguments
and whose ``apply`` adds them to the area's ``Select``. ``list()``, ``page()`` and the QA listings all go
through it, so the same filter means the same rows everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
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
class Filters:
    """Base of the areas' filter objects (fields: the filters; ``apply``: their SQL; ``vocabularies``: the
    filters ``explain`` checks when nothing matched)."""

    vocabularies: ClassVar[tuple[Vocabulary, ...]] = ()

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
        known = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in value if k not in known)
        if unknown:
            raise ValidationError(f"unknown filter(s) {', '.join(unknown)}; filters here: {', '.join(known)}")
        return cls(**{str(k): v for k, v in value.items()})

    def apply(self, q: Select, catalog: Catalog) -> Select:
        raise NotImplementedError

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
