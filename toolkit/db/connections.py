"""Opens the pipeline's databases on first use and closes them together."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ..cache import ResultCache
from ..errors import ClientClosedError, ConfigurationError
from ..notes.sqlite_store import SQLiteNotesStore
from ..notes.store import NotesStore
from ..settings import ENV_CAL_REGISTRY_DB, ENV_QUEUE_DB, Settings
from .base import Backend
from .sqlite import SQLiteBackend


class Connections:
    """The products database and the calibration registry (which newer sites keep inside the products DB)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.require_products_db()
        self._products: Backend | None = None
        self._calibration: Backend | None = None
        self._calibration_checked = False
        self._queue: Backend | None = None
        self._notes: NotesStore | None = None
        self.notes_warned = False  # NotesUnavailableWarning is given once per client
        # kind -> (the notes' version, its per-target summary): see notes.read.summary
        self.notes_summaries: dict[str, tuple[int, Any]] = {}
        self.cache = ResultCache(settings.cache_bytes, settings.cache_ttl, self.data_versions)
        self._lock: asyncio.Lock | None = None
        self._closed = False

    async def products(self) -> Backend:
        if self._products is None:
            async with self._get_lock():
                self._check_open()
                if self._products is None:
                    self._products = await self._open(
                        self.settings.require_products_db(), "products database", "products_db", "ms_index"
                    )
        self._check_open()
        return self._products

    async def calibration(self) -> Backend | None:
        """The backend holding ``caltables``, or None when the site has none."""
        if not self._calibration_checked:
            products = await self.products()
            async with self._get_lock():
                if not self._calibration_checked:
                    registry = self.settings.cal_registry_db
                    if registry is not None:
                        self._calibration = await self._open(
                            registry, "calibration registry", "cal_registry_db", "caltables"
                        )
                    elif products.catalog.has_table("caltables"):
                        self._calibration = products
                    self._calibration_checked = True
        self._check_open()
        return self._calibration

    async def queue(self) -> Backend:
        """The streaming converter's queue database (``PIPELINE_QUEUE_DB``)."""
        if self._queue is None:
            path = self.settings.queue_db
            if path is None:
                raise ConfigurationError(
                    f"no ingest queue database configured: pass queue_db=... or set {ENV_QUEUE_DB}"
                )
            async with self._get_lock():
                self._check_open()
                if self._queue is None:
                    self._queue = await self._open(path, "ingest queue database", "queue_db", "ingest_queue")
        self._check_open()
        return self._queue

    def notes(self) -> NotesStore:
        """The toolkit's own notes database (nothing is opened or created until it is read or written)."""
        self._check_open()
        if self._notes is None:
            location, configured = self.settings.notes_location()
            if isinstance(location, str):
                from ..notes.postgres_store import PostgresNotesStore

                self._notes = PostgresNotesStore(location, timeout=self.settings.query_timeout)
            else:
                pipeline = [p for p in (self.settings.products_db, self.settings.cal_registry_db,
                                        self.settings.queue_db) if isinstance(p, Path)]  # fmt: skip
                self._notes = SQLiteNotesStore(
                    location,
                    busy_timeout=self.settings.query_timeout,
                    create_folder=not configured,
                    forbidden=pipeline,
                )
        return self._notes

    async def data_versions(self) -> tuple[int, ...]:
        """Each open database's change counter, for the result cache (one crossing per database)."""
        backends = {id(b): b for b in self.opened().values()}
        return tuple([await b.data_version() for b in backends.values()])

    def opened(self) -> dict[str, Backend]:
        """The databases opened so far, by setting name."""
        found = {"products_db": self._products, "cal_registry_db": self._calibration, "queue_db": self._queue}
        return {name: backend for name, backend in found.items() if backend is not None}

    async def _open(self, path: Path | str, label: str, setting: str, required_table: str) -> Backend:
        s = self.settings
        common: dict[str, Any] = {
            "label": label,
            "origin": s.origin(setting),
            "query_timeout": s.query_timeout,
            "pool_size": s.pool_size,
            "required_tables": (required_table,),
            "connect_timeout": s.connect_timeout,
        }
        backend: Backend
        if isinstance(path, str):  # a postgresql:// URL (settings keep only those as text)
            from .postgres import PostgresBackend

            backend = await PostgresBackend.open(path, allow_privileged=s.allow_privileged, **common)
        else:
            backend = await SQLiteBackend.open(path, **common)
        if self._closed:
            # aclose() ran while this database was being opened: close it here, or its threads outlive us.
            await backend.aclose()
            self._check_open()
        return backend

    async def require_calibration(self) -> Backend:
        backend = await self.calibration()
        if backend is None:
            raise ConfigurationError(
                "this site has no calibration registry: the products database has no caltables table and "
                f"{ENV_CAL_REGISTRY_DB} is not set"
            )
        return backend

    def _get_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("this client is closed; make a new one (or use `async with`)")

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        self._closed = True
        backends = {id(b): b for b in (self._products, self._calibration, self._queue) if b is not None}
        for backend in backends.values():
            await backend.aclose()
        if self._notes is not None:
            await self._notes.aclose()
