"""Images: the ``images`` table with each image's QA grade (from its MS stage) and run id."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import fits, frames, science
from ..arguments import TimeLike, check_choices, check_text, check_time_range, digits_as_id
from ..cache import cached
from ..db.base import Catalog
from ..db.connections import Connections
from ..errors import RecordNotFoundError, ValidationError
from ..export import ExportResult
from ..notes import read as notes_read
from ..notes.read import NotesJoin
from ..records import Image
from ..runids import fill_run_ids
from ..schema import Kind, kinds
from ..vocab import IMAGE_TYPES, stage_grade_sql
from .cal import tables_for_ms
from .filters import Filters, NoteFilter, Vocabulary
from .listing import export_listing, fetch_listing
from .paging import MAX_PAGE_SIZE, Cursor, Keyset, Listing, Page
from .query import IMAGES_WITH_MS, Select, latest_run_id, select_columns

if TYPE_CHECKING:
    from astropy.io.fits import HDUList
    from astropy.nddata import Cutout2D

KINDS: dict[str, Kind] = {**kinds("images"), "qa_grade": "text", "run_id": "text"}


@dataclass(frozen=True)
class ImageFilters(Filters):
    """What ``images.list``/``images.page`` (and ``qa.images``) keep.

    ``type``: one image type or a list; ``ms_path``: the images of one MS; ``since``/``until`` bound
    ``created_at``; ``search``: the path contains this text (any case); ``tag``: images that carry this
    tag in the notes.
    """

    type: str | list[str] | None = None
    ms_path: str | None = None
    since: TimeLike | None = None
    until: TimeLike | None = None
    search: str | None = None
    tag: str | None = None

    vocabularies = (Vocabulary("type", "images", "type", IMAGE_TYPES),)
    note_filter = NoteFilter("tag", "image", "i.path")

    def apply(self, q: Select, catalog: Catalog) -> Select:
        start, end = check_time_range(self.since, self.until)
        q.filter_in("i.type", check_choices(self.type, "type"))
        if self.ms_path is not None:
            q.filter("i.ms_path = ?", check_text(self.ms_path, "ms_path"))
        q.filter_range("i.created_at", start, end, catalog.time_placeholder("images", "created_at"))
        q.filter_contains("i.path", self.search)
        return self.apply_note_keys(q, catalog)


def select(catalog: Catalog) -> Select:
    """Every ``images`` column plus ``qa_grade`` (its MS stage) and ``run_id``, images aliased ``i``."""
    columns = [
        *select_columns(catalog, "images", "i"),
        f"{stage_grade_sql('m.stage')} AS qa_grade",
        f"{latest_run_id(catalog, 'i.ms_path')} AS run_id",
    ]
    return Select(columns, IMAGES_WITH_MS)


LISTING = Listing(
    Keyset(
        key="i.id",
        key_column="id",
        table="images",
        sorts={
            "created_at": "i.created_at",
            "noise_jy": "i.noise_jy",
            "dynamic_range": "i.dynamic_range",
            "beam_major_arcsec": "i.beam_major_arcsec",
            "type": "i.type",
            "path": "i.path",
            "id": "i.id",
        },
        count_source="images AS i",
    ),
    ImageFilters,
    select,
    KINDS,
    fill_run_ids,
    order_by="i.created_at DESC, i.id DESC",
)


def image_ident(id_or_path: int | str) -> int | str:
    """An image's id or path as given: a string of ASCII digits is an id (as the pipeline's API read
    ``/images/123``), anything else a path."""
    if isinstance(id_or_path, bool) or not isinstance(id_or_path, int | str):
        raise ValidationError(f"an image is named by its integer id or its path, not {id_or_path!r}")
    return digits_as_id(id_or_path)


def filter_one_image(q: Select, id_or_path: int | str) -> Select:
    """Narrow ``q`` (images aliased ``i``) to one image, named by id (an int or a string of digits) or path."""
    ident = image_ident(id_or_path)
    if isinstance(ident, int):
        return q.filter("i.id = ?", ident)
    return q.filter("i.path = ?", check_text(ident, "path"))


def get_select(catalog: Catalog, id_or_path: int | str) -> Select:
    return filter_one_image(select(catalog), id_or_path)


NOTES = NotesJoin("image", "path")


class Images:
    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    async def list(
        self,
        *,
        type: str | list[str] | None = None,
        ms_path: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        search: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> pd.DataFrame:
        """Images, newest first, with every ``images`` column plus ``qa_grade``, ``run_id``, and from the
        notes ``tags`` (comma-separated) and ``n_comments``.

        ``since``/``until`` bound ``created_at``; ``type`` takes one type or a list; ``search`` keeps paths
        containing that text; ``tag`` keeps images carrying that tag.
        """
        filters = ImageFilters(type=type, ms_path=ms_path, since=since, until=until, search=search, tag=tag)
        filters = await notes_read.resolve(self._connections, filters)
        return await notes_read.annotated(self._connections, self._list(filters, limit, offset), NOTES)

    @cached("images:list")
    async def _list(self, filters: ImageFilters, limit: int | None, offset: int) -> pd.DataFrame:
        db = await self._connections.products()
        q = LISTING.list_select(db.catalog, filters, limit=limit, offset=offset)
        frame = await fetch_listing(
            db, q, key="i.created_at", count_source="images AS i", kinds=KINDS, post=fill_run_ids
        )
        if frame.empty:
            await filters.explain(db)
        return frame

    async def export(
        self,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,
        batch_rows: int = MAX_PAGE_SIZE,
        overwrite: bool = False,
        progress: bool = True,
        **filters: Any,
    ) -> ExportResult:
        """Write the images :meth:`list` gives for ``filters`` (``type``, ``ms_path``, ``since``, ``until``, ``search``, ``tag``)
        to a Parquet or CSV file, in :meth:`list`'s order, read in keyset pages of ``batch_rows`` (1 to 1,000)
        with a progress bar. ``format`` and ``overwrite`` as in ``sources.export``; ``<file>.manifest.json``
        beside it records the query, the filters, the database's change counter, the toolkit's version and
        the time. Reading a Parquet export back with ``pd.read_parquet`` gives the frame :meth:`list`
        returns."""
        return await export_listing(
            self._connections, LISTING, "images", self.page, path,
            format=format, batch_rows=batch_rows, overwrite=overwrite, progress=progress, filters=filters,
        )  # fmt: skip

    async def page(
        self,
        filters: ImageFilters | Mapping[str, Any] | None = None,
        *,
        sort: str = "created_at",
        descending: bool = True,
        after: Cursor | None = None,
        before: Cursor | None = None,
        number: int | None = None,
        last: bool = False,
        size: int = 50,
        count: bool = True,
    ) -> Page:
        """One page of images, newest first by default, with :meth:`list`'s filters (an ``ImageFilters``
        or a dict such as ``{"type": "pbcor"}``).

        Pass ``page.next`` as ``after`` for the following page and ``page.previous`` as ``before`` for the
        one before; ``number`` jumps to a page (1 is the first) and ``last`` to the last. ``sort`` is a
        column: created_at, noise_jy, dynamic_range, beam_major_arcsec, type, path or id. ``size`` is 1 to
        1,000 rows; ``count`` adds how many rows match, capped at 10,000.
        """
        wanted = await notes_read.resolve(self._connections, ImageFilters.of(filters))
        db = await self._connections.products()
        found = await LISTING.page(
            db, wanted, sort=sort, descending=descending, after=after, before=before, number=number,
            last=last, size=size, count=count,
        )  # fmt: skip
        return await notes_read.annotate_page(self._connections, found, NOTES)

    async def _stored_path(self, id_or_path: int | str) -> str:
        """The path the pipeline recorded: looked up for an id, taken as given for a path."""
        ident = image_ident(id_or_path)
        if isinstance(ident, str):
            return check_text(ident, "path")
        db = await self._connections.products()
        rows = await db.fetch_rows("SELECT path FROM images WHERE id = ?", [ident])
        if not rows:
            raise RecordNotFoundError("image", id_or_path)
        return str(rows[0][0])

    async def file_path(self, id_or_path: int | str) -> Path:
        """Where the image's file is on this machine: the recorded path with the ``path_map`` setting
        applied (``CONTIMG_PATH_MAP``, for disks mounted elsewhere), checked against ``image_roots`` when
        they are set (``InvalidPathError`` outside them). The file need not exist."""
        return fits.checked_path(self._connections.settings, await self._stored_path(id_or_path))

    async def open(self, id_or_path: int | str) -> HDUList:
        """The image's FITS file as an astropy ``HDUList``, memory-mapped (data are read when used). Close
        it, or use it in a ``with`` block.

        ``FileNotAccessibleError`` when the file is missing, unreadable or not FITS; ``InvalidPathError``
        when ``image_roots`` are set and it lies outside them; ``RecordNotFoundError`` for an unknown id."""
        stored = await self._stored_path(id_or_path)
        return await asyncio.to_thread(fits.open_fits, self._connections.settings, stored)

    async def cutout(
        self, id_or_path: int | str, ra_deg: float, dec_deg: float, size_arcsec: float
    ) -> Cutout2D:
        """A square astropy ``Cutout2D`` of the image, ``size_arcsec`` wide (at most 10 deg) around a
        position, with its WCS (``cutout.wcs``) and its own copy of the data; trimmed where it meets the
        image's edge. A position off the image raises ``ValidationError``; the file's errors are those of
        :meth:`open`."""
        science.check_position(ra_deg, dec_deg)
        size = fits.check_cutout_size(size_arcsec)
        stored = await self._stored_path(id_or_path)
        return await asyncio.to_thread(fits.cutout, self._connections.settings, stored, ra_deg, dec_deg, size)

    async def get(self, id_or_path: int | str) -> Image:
        """One image by id or path (``"123"``, a string of digits, is the id 123); ``RecordNotFoundError``
        when there is none.

        ``cal_table`` is the first table of the registry's set for its MS (as ``ms.get`` lists them) and
        ``qa_summary`` its QA grade and reasons in one line (as ``qa.image`` grades it)."""
        # qa reads this module's filters, so its grading is imported here to keep imports one-way
        from .qa import image_summary_line

        db = await self._connections.products()
        q = get_select(db.catalog, id_or_path)
        q.columns = [*q.columns, "m.mid_mjd AS ms_mid_mjd"]
        sql, params = q.build()
        frame = await db.fetch_frame(sql, params, {**KINDS, "ms_mid_mjd": "real"}, post=fill_run_ids)
        if frame.empty:
            raise RecordNotFoundError("image", id_or_path)
        row = frames.first_row(frame)
        tables, summary = await asyncio.gather(
            tables_for_ms(self._connections, row["ms_path"], row["ms_mid_mjd"]),
            image_summary_line(self._connections, int(row["id"])),
        )
        return Image.from_row(row, cal_table=tables[0].path if tables else None, qa_summary=summary)
