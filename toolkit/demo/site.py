"""What a demo site is: its size, and the paths (and environment) of one that was built."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .image_files import STAGE_PREFIX, stage_folder


@dataclass(frozen=True)
class DemoSize:
    """How big a demo site is. ``SMALL`` suits tests; ``BENCH`` is the benchmark size."""

    n_ms: int
    n_images: int
    n_sources: int
    n_epochs: int
    max_log_files: int = 2000


SMALL = DemoSize(n_ms=300, n_images=300, n_sources=80, n_epochs=40)
BENCH = DemoSize(n_ms=10_500, n_images=10_000, n_sources=10_000, n_epochs=100, max_log_files=500)
SIZES = {"small": SMALL, "bench": BENCH}
# The generator holds a site's photometry in memory while it writes it (about 850 bytes a row), so a site's
# size is bounded: 12,000,000 rows need about 10 GiB.
MAX_ROWS = 12_000_000


def size_for_rows(rows: int) -> DemoSize:
    """The bench site's images and MS with ``rows`` photometry rows (rounded up to whole sources of 100
    epochs), for the scale benchmarks."""
    from ..arguments import check_count

    check_count(rows, "rows", low=1_000, high=MAX_ROWS)
    return DemoSize(n_ms=10_500, n_images=10_000, n_sources=-(-rows // 100), n_epochs=100, max_log_files=500)


@dataclass(frozen=True)
class DemoSite:
    """Paths of a built demo site and the environment that points the toolkit at it."""

    root: Path
    products_db: Path
    cal_registry_db: Path | None
    log_dir: Path
    variable_sources: tuple[str, ...] = field(default=())
    transient_source: str = ""
    queue_db: Path | None = None
    notes_db: Path | None = None  # the toolkit's own notes (a few annotations), not the pipeline's

    @classmethod
    def existing(cls, root: str | Path) -> DemoSite:
        """The paths of a site built earlier in ``root`` (the queue database only if that build made one)."""
        folder = Path(root)
        queue = folder / "ingest_queue.sqlite3"
        notes = folder / "notes.sqlite3"
        return cls(
            root=folder,
            products_db=folder / "products.sqlite3",
            cal_registry_db=folder / "cal_registry.sqlite3",
            log_dir=folder / "logs",
            queue_db=queue if queue.exists() else None,
            notes_db=notes if notes.exists() else None,
        )

    @property
    def env(self) -> dict[str, str]:
        env = {"PIPELINE_PRODUCTS_DB": str(self.products_db), "PIPELINE_LOG_DIRS": str(self.log_dir)}
        if self.cal_registry_db is not None:
            env["PIPELINE_CAL_REGISTRY_DB"] = str(self.cal_registry_db)
        if self.queue_db is not None:
            env["PIPELINE_QUEUE_DB"] = str(self.queue_db)
        if self.notes_db is not None:
            env["CONTIMG_NOTES_DB"] = str(self.notes_db)
        env["CONTIMG_PATH_MAP"] = f"{STAGE_PREFIX}={stage_folder(self.root)}"
        env["CONTIMG_IMAGE_ROOTS"] = str(stage_folder(self.root))
        return env

    def settings_kwargs(self) -> dict[str, Any]:
        return {
            "products_db": self.products_db,
            "cal_registry_db": self.cal_registry_db,
            "log_dirs": (self.log_dir,),
            "queue_db": self.queue_db,
            "notes_db": self.notes_db,
            # the pipeline's /stage/dsa110-contimg is the site's stage folder, where its FITS files are
            "path_map": ((STAGE_PREFIX, stage_folder(self.root)),),
            "image_roots": (stage_folder(self.root),),
        }
