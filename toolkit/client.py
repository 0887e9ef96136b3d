"""AsyncClient: the one implementation behind every way of using the toolkit."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import pandas as pd

from .arguments import check_count
from .db.connections import Connections
from .db.sqlite import DEFAULT_MAX_ROWS
from .db.statements import check_read_statement
from .domains.cal import CalTables
from .domains.images import Images
from .domains.jobs import Jobs
from .domains.jobs_queue import JobsQueue
from .domains.logs import Logs
from .domains.ms import MeasurementSets
from .domains.nights import last_night as _last_night
from .domains.notes import Notes
from .domains.provenance import Provenance
from .domains.provenance import provenance as _provenance
from .domains.qa import QA
from .domains.queue import Queue
from .domains.services import Services
from .domains.sources import Sources
from .domains.stats import stats as _stats
from .errors import ToolkitError, ValidationError
from .records import Night, Stats
from .settings import Settings


def area_names(client: AsyncClient) -> list[str]:
    """The client's areas (``images``, ``ms``, ...) in the order it creates them: its attributes holding a
    domain object. The blocking facade's generator and the tests that cover every area read them here."""
    return [
        name
        for name, value in vars(client).items()
        if not name.startswith("_") and type(value).__module__.startswith(f"{__package__}.domains.")
    ]


class AsyncClient:
    """Read-only async access to a pipeline site.

    ``AsyncClient(settings=None, **overrides)``: with no settings, they come from the environment
    (``PIPELINE_PRODUCTS_DB``, ``PIPELINE_CAL_REGISTRY_DB``, ``PIPELINE_LOG_DIRS``); keyword overrides win.
    Use it as ``async with AsyncClient() as client:``, or call ``await client.aclose()`` when done. The
    databases are opened on first use, read-only.
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        if settings is None:
            settings = Settings.from_env(**overrides)
        elif overrides:
            settings = settings.with_overrides(**overrides)
        self.settings = settings
        self._connections = Connections(settings)
        self.images = Images(self._connections)
        self.ms = MeasurementSets(self._connections)
        self.sources = Sources(self._connections)
        self.jobs = Jobs(self._connections)
        self.cal = CalTables(self._connections)
        self.logs = Logs(self._connections)
        self.qa = QA(self._connections, self.logs)
        self.queue = Queue(self._connections)
        self.jobs_queue = JobsQueue(self._connections)
        self.services = Services(self._connections)
        self.notes = Notes(self._connections)
        self.cache = self._connections.cache

    async def open(self) -> AsyncClient:
        """Open the products database now (it opens on first use otherwise); errors surface here."""
        await self._connections.products()
        await self._connections.calibration()
        return self

    async def __aenter__(self) -> AsyncClient:
        try:
            return await self.open()
        except BaseException:
            await self.aclose()
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection and worker thread. Calls after this raise ``ClientClosedError``."""
        await self._connections.aclose()
        self.logs.aclose()
        await self.jobs_queue.aclose()

    @property
    def closed(self) -> bool:
        return self._connections.closed

    async def stats(self) -> Stats:
        """Dashboard counts: MS by stage (an MS with no stage yet counts as "pending"), images, photometry rows,
        sources, jobs by status, cal tables; ``generated_at`` is when they were read (UTC)."""
        cache = self._connections.cache
        if not cache.enabled:
            return await _stats(self._connections)
        return await cache.get_or_compute("stats()", lambda: _stats(self._connections))

    async def data_version(self) -> tuple[int, ...]:
        """The change counters of the site's databases (products, calibration registry, ingest queue when
        configured; SQLite's ``PRAGMA data_version``, on PostgreSQL the WAL position) and of the notes (the
        newest event): a different value means something was written since. One small query each; live
        views poll it and read again only when it moved."""
        await self._connections.products()
        await self._connections.calibration()
        if self.settings.queue_db is not None:
            await self._connections.queue()
        versions = await self._connections.data_versions()
        try:
            notes = await self._connections.notes().version()
        except ToolkitError:  # unreadable notes: the views say so where they join them
            notes = -1
        return (*versions, -1 if notes is None else notes)

    async def last_night(self) -> Night:
        """The last night that has data: the UTC day of the newest image (of the newest MS observation when
        there is no image yet), whenever that was. ``client.qa.images(**night.bounds)`` grades it.
        ``RecordNotFoundError`` on a site with neither."""
        return await _last_night(self._connections)

    async def provenance(self, target: int | str) -> Provenance:
        """The chain around an image (id or path), an MS (path) or a run id: the MS, the cal tables applied
        and solved from it, the job and its log, the images made from it and their photometry rows. Missing
        links are listed in ``missing``, not raised."""
        return await _provenance(
            self._connections, target, images=self.images, ms_area=self.ms, jobs=self.jobs, logs=self.logs
        )

    async def sql(
        self, query: str, params: Sequence[Any] | None = None, *, max_rows: int = DEFAULT_MAX_ROWS
    ) -> pd.DataFrame:
        """Run one read-only SQL statement on the products database and return a DataFrame.

        Only reads run: one ``SELECT``, ``WITH ... SELECT``, ``VALUES``, ``EXPLAIN`` or a reporting ``PRAGMA``
        (SQLite). Writes and transaction control are refused (``ReadOnlyError``); the query is interrupted at
        the query timeout; more than ``max_rows`` rows is a ``ValidationError`` (add a ``LIMIT``). Columns
        named like the pipeline's unix times (``*_at``, ``timestamp``) become UTC datetimes.
        """
        check_count(max_rows, "max_rows", low=1)
        db = await self._connections.products()
        statement = check_read_statement(query, db.catalog.dialect.name)
        if params is not None and (isinstance(params, str | bytes) or not isinstance(params, Sequence)):
            raise ValidationError(f"params must be a list or tuple of values, got {type(params).__name__}")
        return await db.fetch_user_frame(statement, list(params or ()), max_rows)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<AsyncClient {state} {self.settings.sources_line()}>"
