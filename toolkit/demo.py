"""Build a realistic, deterministic demo site: products DB, calibration registry and per-job log files.

The data follows the pipeline's schema (:mod:`toolkit.schema`) and has what real data has: failed and stuck
measurement sets, missing values, several image types, strongly variable sources and one transient, active,
retired and failed calibration sets, jobs in every status, and tables the toolkit does not read.

``contimg demo DIR [--scale bench] [--schema older]`` builds one from the shell.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .runids import run_id_for_ms
from .schema import CALTABLES, MS_STAGES, NEWER, OLDER, TABLE_TYPES, Kind

MJD_UNIX_EPOCH = 40587.0
SECONDS_PER_DAY = 86400.0
MS_ROOT = "/stage/dsa110-contimg/ms"
IMAGE_ROOT = "/stage/dsa110-contimg/images"
CAL_ROOT = "/stage/dsa110-contimg/caltables"
INCOMING_ROOT = "/data/incoming"
QUEUE_STATES = ("collecting", "pending", "in_progress", "completed", "failed")
EXPECTED_SUBBANDS = 16
DSA110_DEC = 54.57
Schema = Literal["newer", "older"]
Progress = Callable[[str, int, int], None]


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

# The pipeline's products carry the odd surprise; the demo plants a few on purpose.
N_VARIABLE_FRACTION = 0.01
TRANSIENT_SOURCE_INDEX = 7


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

    @classmethod
    def existing(cls, root: str | Path) -> DemoSite:
        """The paths of a site built earlier in ``root`` (the queue database only if that build made one)."""
        folder = Path(root)
        queue = folder / "ingest_queue.sqlite3"
        return cls(
            root=folder,
            products_db=folder / "products.sqlite3",
            cal_registry_db=folder / "cal_registry.sqlite3",
            log_dir=folder / "logs",
            queue_db=queue if queue.exists() else None,
        )

    @property
    def env(self) -> dict[str, str]:
        env = {"PIPELINE_PRODUCTS_DB": str(self.products_db), "PIPELINE_LOG_DIRS": str(self.log_dir)}
        if self.cal_registry_db is not None:
            env["PIPELINE_CAL_REGISTRY_DB"] = str(self.cal_registry_db)
        if self.queue_db is not None:
            env["PIPELINE_QUEUE_DB"] = str(self.queue_db)
        return env

    def settings_kwargs(self) -> dict[str, Any]:
        return {
            "products_db": self.products_db,
            "cal_registry_db": self.cal_registry_db,
            "log_dirs": (self.log_dir,),
            "queue_db": self.queue_db,
        }


def mjd_to_unix(mjd: np.ndarray | float) -> Any:
    return (np.asarray(mjd) - MJD_UNIX_EPOCH) * SECONDS_PER_DAY


def unix_to_mjd(seconds: float) -> float:
    return seconds / SECONDS_PER_DAY + MJD_UNIX_EPOCH


def ms_name(mjd: float) -> str:
    """The pipeline names an MS after its start time: ``2025-10-05T12:30:00.ms``."""
    stamp = datetime.fromtimestamp(round(float(mjd_to_unix(mjd))), tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + ".ms"


def _sql_type(kind: Kind) -> str:
    return {"int": "INTEGER", "bool": "INTEGER", "real": "REAL", "time": "REAL"}.get(kind, "TEXT")


def _create_table(conn: sqlite3.Connection, table: str, columns: Sequence[str]) -> None:
    kinds = dict(NEWER[table])
    defs = []
    for name in columns:
        if name == "id":
            defs.append("id INTEGER PRIMARY KEY")
        elif table == "ms_index" and name == "path":
            defs.append("path TEXT PRIMARY KEY")
        elif table == "caltables" and name == "path":
            defs.append("path TEXT UNIQUE")
        else:
            defs.append(f"{name} {_sql_type(kinds[name])}")
    conn.execute(f"CREATE TABLE {table} ({', '.join(defs)})")


def _insert(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    marks = ", ".join("?" for _ in columns)
    conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def _columns_of(table: str, schema: Schema) -> tuple[str, ...]:
    if schema == "older" and table in OLDER:
        return OLDER[table]
    return tuple(name for name, _ in NEWER[table])


def _rows(columns: Sequence[str], data: dict[str, Sequence[Any]]) -> list[tuple[Any, ...]]:
    return list(zip(*(data[name] for name in columns), strict=True))


def _py(values: np.ndarray, null_mask: np.ndarray | None = None) -> list[Any]:
    """numpy -> Python values, with None where ``null_mask`` is set."""
    out: list[Any] = values.tolist()
    if null_mask is not None:
        for i in np.flatnonzero(null_mask):
            out[i] = None
    return out


def _source_name(ra: float, dec: float) -> str:
    h = ra / 15.0
    hh, mm = int(h), int((h % 1) * 60)
    ss = ((h * 60) % 1) * 60
    sign = "+" if dec >= 0 else "-"
    d = abs(dec)
    dd, dm = int(d), int((d % 1) * 60)
    ds = ((d * 60) % 1) * 60
    return f"J{hh:02d}{mm:02d}{ss:04.1f}{sign}{dd:02d}{dm:02d}{ds:04.1f}"


class _Builder:
    def __init__(self, size: DemoSize, seed: int, now: datetime) -> None:
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.now_unix = now.timestamp()
        self.now_mjd = unix_to_mjd(self.now_unix)

    # ------------------------------------------------------------------------------ measurement sets
    def measurement_sets(self) -> dict[str, Any]:
        n = self.size.n_ms
        rng = self.rng
        cadence = 5.0 / 1440.0  # one MS every 5 minutes
        start = self.now_mjd - 0.5 / 24 - n * cadence
        start_mjd = start + np.arange(n) * cadence
        end_mjd = start_mjd + cadence
        mid_mjd = (start_mjd + end_mjd) / 2
        paths = [f"{MS_ROOT}/{ms_name(m)}" for m in start_mjd]

        # The newest MS are still moving through the pipeline; older ones are done, a few failed or stuck.
        progress = np.full(n, MS_STAGES.index("imaged"))
        late = np.arange(n) >= n - max(6, n // 25)
        progress[late] = rng.integers(0, 4, late.sum())
        done = ~late
        progress[done & (rng.random(n) < 0.15)] = MS_STAGES.index("mosaicked")
        progress[done & (rng.random(n) < 0.10)] = MS_STAGES.index("cataloged")
        failed = done & (rng.random(n) < 0.05)
        progress[failed] = rng.integers(0, 3, failed.sum())
        stuck = np.zeros(n, dtype=bool)
        stuck[rng.choice(np.flatnonzero(done & ~failed), size=max(3, n // 100), replace=False)] = True
        progress[stuck] = MS_STAGES.index("calibrated")
        stage = [MS_STAGES[i] for i in progress]
        status = np.where(failed, "failed", np.where(late | stuck, "in_progress", "completed"))
        status[late & (progress == 0)] = "pending"

        obs_unix = mjd_to_unix(end_mjd)
        processed_at = obs_unix + rng.uniform(120, 1800, n)
        stage_updated_at = processed_at + rng.uniform(60, 3600, n)
        # Stuck MS have sat in their stage for days.
        stage_updated_at[stuck] = self.now_unix - rng.uniform(2, 5, stuck.sum()) * SECONDS_PER_DAY
        stage_updated_at = np.minimum(stage_updated_at, self.now_unix - 60)
        cal_applied = (progress >= MS_STAGES.index("calibrated")).astype(int)
        cal_applied[done & (rng.random(n) < 0.02)] = 0

        pointing_ra = (280.46061837 + 360.98564736629 * (mid_mjd - 51544.5)) % 360.0
        pointing_dec = np.full(n, DSA110_DEC)
        no_pointing = rng.random(n) < 0.05
        self.ms_pointing = (pointing_ra, pointing_dec)
        data: dict[str, Any] = {
            "path": paths,
            "start_mjd": start_mjd.tolist(),
            "end_mjd": end_mjd.tolist(),
            "mid_mjd": mid_mjd.tolist(),
            "processed_at": _py(processed_at, progress == 0),
            "status": status.tolist(),
            "stage": stage,
            "stage_updated_at": stage_updated_at.tolist(),
            "cal_applied": cal_applied.tolist(),
            "imagename": [
                p.replace(MS_ROOT, IMAGE_ROOT).removesuffix(".ms") + ".img" if g >= 3 else None
                for p, g in zip(paths, progress, strict=True)
            ],
            "ra_deg": (pointing_ra + rng.normal(0, 0.01, n)).tolist(),
            "dec_deg": (pointing_dec + rng.normal(0, 0.01, n)).tolist(),
            "pointing_ra_deg": _py(pointing_ra, no_pointing),
            "pointing_dec_deg": _py(pointing_dec, no_pointing),
            "field_name": [f"drift_{int(r // 15):02d}h" for r in pointing_ra],
            "group_id": [p.rsplit("/", 1)[1].removesuffix(".ms") for p in paths],
            "created_at": (mjd_to_unix(start_mjd) + 30).tolist(),
        }
        self.ms = data
        self.ms_progress = progress
        self.ms_failed = failed
        return data

    # ------------------------------------------------------------------------------------- images
    def images(self) -> dict[str, Any]:
        rng = self.rng
        ms = self.ms
        imaged = np.flatnonzero(self.ms_progress >= MS_STAGES.index("imaged"))
        n = self.size.n_images
        n_mosaic = max(2, n // 200)
        n_regular = n - n_mosaic
        types = ["image", "pbcor", "residual", "model"]
        owner = imaged[np.arange(n_regular) % len(imaged)]
        kind = [types[min(i // len(imaged), len(types) - 1)] for i in range(n_regular)]
        ms_paths: list[str | None] = [ms["path"][i] for i in owner]
        paths = [
            f"{ms['path'][i].replace(MS_ROOT, IMAGE_ROOT).removesuffix('.ms')}.img.{t}.fits"
            for i, t in zip(owner, kind, strict=True)
        ]
        mid = np.asarray(ms["mid_mjd"])[owner]
        created = mjd_to_unix(mid) + rng.uniform(900, 3600, n_regular)
        # Mosaics combine many MS: no single ms_path.
        mos_mid = np.sort(rng.choice(mid, n_mosaic))
        paths += [f"{IMAGE_ROOT}/mosaics/mosaic_{i:04d}.fits" for i in range(n_mosaic)]
        ms_paths += [None] * n_mosaic
        kind += ["mosaic"] * n_mosaic
        created = np.concatenate([created, mjd_to_unix(mos_mid) + 7200])
        owner_all = np.concatenate([owner, np.full(n_mosaic, -1)])

        noise = rng.lognormal(np.log(1.1e-3), 0.25, n)
        bad = rng.random(n) < 0.06
        noise[bad] *= rng.uniform(2.5, 6, bad.sum())
        noise[np.array(kind) == "mosaic"] /= 3
        beam_major = rng.normal(16.0, 1.5, n)
        beam_major[rng.random(n) < 0.03] *= 2.2
        beam_minor = beam_major * rng.uniform(0.55, 0.95, n)
        peak = rng.lognormal(np.log(0.8), 0.5, n)
        ra = np.where(owner_all >= 0, np.asarray(ms["ra_deg"])[owner_all], rng.uniform(0, 360, n))
        dec = np.where(owner_all >= 0, np.asarray(ms["dec_deg"])[owner_all], DSA110_DEC)
        order = np.argsort(created, kind="stable")
        missing_noise = rng.random(n) < 0.02
        missing_beam = rng.random(n) < 0.02
        data = {
            "id": list(range(1, n + 1)),
            "path": [paths[i] for i in order],
            "ms_path": [ms_paths[i] for i in order],
            "created_at": created[order].tolist(),
            "type": [kind[i] for i in order],
            "beam_major_arcsec": _py(beam_major[order], missing_beam),
            "noise_jy": _py(noise[order], missing_noise),
            "pbcor": [int(kind[i] in ("pbcor", "mosaic")) for i in order],
            "format": ["fits"] * n,
            "beam_minor_arcsec": _py(beam_minor[order], missing_beam),
            "beam_pa_deg": _py(rng.uniform(-90, 90, n), missing_beam),
            "dynamic_range": (peak[order] / noise[order]).tolist(),
            "field_name": [f"drift_{int(r // 15):02d}h" for r in ra[order]],
            "center_ra_deg": ra[order].tolist(),
            "center_dec_deg": dec[order].tolist(),
            "imsize_x": [2400] * n,
            "imsize_y": [2400] * n,
            "cellsize_arcsec": [3.0] * n,
            "freq_ghz": [1.405] * n,
            "bandwidth_mhz": [187.5] * n,
            "integration_sec": [300.0] * n,
        }
        self.images_data = data
        self.image_peak = peak[order]
        return data

    # --------------------------------------------------------------------------------- photometry
    def photometry(self) -> dict[str, Any]:
        rng = self.rng
        img = self.images_data
        main = [i for i, t in enumerate(img["type"]) if t == "image"]
        ms_mid = dict(zip(self.ms["path"], self.ms["mid_mjd"], strict=True))
        mjd_of_main = np.array([ms_mid[img["ms_path"][i]] for i in main])
        order = np.argsort(mjd_of_main, kind="stable")
        main = [main[i] for i in order]
        mjd_of_main = mjd_of_main[order]

        ns, ne = self.size.n_sources, self.size.n_epochs
        block = max(1, len(main) // ne)
        src = np.repeat(np.arange(ns), ne)
        epoch = np.tile(np.arange(ne), ns)
        image_idx = np.minimum((epoch * len(main)) // ne + (src % block), len(main) - 1)
        image_rows = np.asarray(main)[image_idx]
        mjd = mjd_of_main[image_idx] + rng.uniform(-1e-4, 1e-4, src.size)

        ra = rng.uniform(0, 360, ns)
        ra[:3] = [359.9995, 0.0004, 0.2]  # sources either side of RA 0/360
        dec = DSA110_DEC + rng.uniform(-1.5, 1.5, ns)
        names = [_source_name(r, d) for r, d in zip(ra, dec, strict=True)]
        seen: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in seen:
                names[i] = f"{name}_{i}"
            seen[names[i]] = i
        base = rng.lognormal(np.log(0.02), 0.9, ns)
        n_var = max(3, int(ns * N_VARIABLE_FRACTION))
        variable = rng.choice(np.setdiff1d(np.arange(ns), [TRANSIENT_SOURCE_INDEX]), n_var, replace=False)
        base[variable] = np.maximum(base[variable], 0.03)

        true = base[src].copy()
        factor = np.ones(src.size)
        for k, s in enumerate(variable):
            rows = src == s
            phase = epoch[rows] / ne * 2 * math.pi * (1 + k % 3)
            factor[rows] = 1 + 0.6 * np.sin(phase + k)
        true *= factor
        t_rows = src == TRANSIENT_SOURCE_INDEX
        base[TRANSIENT_SOURCE_INDEX] = 0.05
        onset = int(ne * 0.6)
        true[t_rows] = np.where(
            epoch[t_rows] >= onset, 0.05 * np.exp(-(epoch[t_rows] - onset) / (ne / 5)), 0.0
        )

        err = np.sqrt((0.03 * true) ** 2 + 0.0012**2)
        flux = true + rng.normal(0, 1, src.size) * err
        peak = flux * rng.normal(0.95, 0.02, src.size)
        peak_err = err * 1.05
        null_flux = rng.random(src.size) < 0.02
        null_err = rng.random(src.size) < 0.01
        norm = flux / rng.normal(1.0, 0.01, src.size)
        n = src.size
        data = {
            "id": list(range(1, n + 1)),
            "source_id": [names[s] for s in src],
            "image_path": [img["path"][i] for i in image_rows],
            "ra_deg": (ra[src] + rng.normal(0, 1e-4, n)).tolist(),
            "dec_deg": (dec[src] + rng.normal(0, 1e-4, n)).tolist(),
            "nvss_flux_mjy": (base[src] * 1000 * 1.02).tolist(),
            "peak_jyb": peak.tolist(),
            "peak_err_jyb": peak_err.tolist(),
            "flux_jy": _py(flux, null_flux),
            "flux_err_jy": _py(err, null_flux | null_err),
            "normalized_flux_jy": _py(norm, null_flux),
            "normalized_flux_err_jy": _py(err, null_flux | null_err),
            "measured_at": (mjd_to_unix(mjd) + 600).tolist(),
            "mjd": mjd.tolist(),
            "mosaic_path": [None] * n,
            "snr": (flux / err).tolist(),
            "local_rms": (err * 0.9).tolist(),
            "rms_jy": err.tolist(),
            "sep_from_center_deg": rng.uniform(0, 1.6, n).tolist(),
            "quality_flag": np.where(np.abs(flux / err) > 5, "good", "low_snr").tolist(),
            "flags": [""] * n,
        }
        self.variable_sources = tuple(sorted(names[s] for s in variable))
        self.transient_source = names[TRANSIENT_SOURCE_INDEX]
        return data

    # ------------------------------------------------------------------------------------- jobs
    def jobs(self) -> dict[str, Any]:
        rng = self.rng
        ms = self.ms
        started_ms = np.flatnonzero(self.ms_progress >= MS_STAGES.index("converted"))
        n = len(started_ms)
        job_type = ["imaging" if self.ms_progress[i] >= 3 else "calibration" for i in started_ms]
        status = []
        for i in started_ms:
            if self.ms_failed[i]:
                status.append("failed")
            elif ms["status"][i] == "in_progress":
                status.append("running")
            else:
                status.append("completed")
        # Every status appears, even on the smallest site.
        for k, extra in enumerate(("pending", "cancelled", "pending")):
            status[-(k + 1)] = extra
        created = np.asarray(ms["created_at"])[started_ms] + 60
        started = created + rng.uniform(5, 120, n)
        duration = rng.lognormal(np.log(600), 0.4, n)
        finished = started + duration
        st = np.array(status)
        running = st == "running"
        pending = st == "pending"
        run_ids = [run_id_for_ms(ms["path"][i]) for i in started_ms]
        params = [
            json.dumps({"imsize": 2400, "cell_arcsec": 3.0, "niter": 1000, "robust": 0.5, "refant": "pad103"})
            for _ in started_ms
        ]
        artifacts = []
        images_by_ms: dict[str, list[str]] = {}
        for path, ms_path in zip(self.images_data["path"], self.images_data["ms_path"], strict=True):
            if ms_path:
                images_by_ms.setdefault(ms_path, []).append(path)
        for i in started_ms:
            artifacts.append(json.dumps({"images": images_by_ms.get(ms["path"][i], [])}))
        logs: list[str | None] = [None] * n
        data = {
            "id": list(range(1, n + 1)),
            "type": job_type,
            "status": status,
            "ms_path": [ms["path"][i] for i in started_ms],
            "run_id": run_ids,
            "params": params,
            "logs": logs,
            "artifacts": artifacts,
            "created_at": created.tolist(),
            "started_at": _py(started, pending),
            "finished_at": _py(finished, pending | running),
        }
        self.jobs_data = data
        return data

    def log_texts(self) -> dict[str, str]:
        """Log text per run id: both of the pipeline's line formats, tracebacks for failed jobs."""
        texts: dict[str, str] = {}
        jobs = self.jobs_data
        for k in range(min(len(jobs["id"]), self.size.max_log_files)):
            run_id, status = jobs["run_id"][k], jobs["status"][k]
            if status == "pending":
                continue
            t0 = jobs["started_at"][k]
            texts[run_id] = _log_text(run_id, jobs["ms_path"][k], status, float(t0), self.rng)
        return texts

    # --------------------------------------------------------------------------------------- QA
    def image_qa(self) -> dict[str, Any]:
        img = self.images_data
        rows = [i for i, t in enumerate(img["type"]) if t in ("image", "mosaic")]
        rng = self.rng
        noise = [img["noise_jy"][i] for i in rows]
        n = len(rows)
        quality = ["poor" if v is not None and v > 3e-3 else "good" for v in noise]
        data = {
            "id": list(range(1, n + 1)),
            "ms_path": [img["ms_path"][i] for i in rows],
            "job_id": [None] * n,
            "image_path": [img["path"][i] for i in rows],
            "rms_noise": noise,
            "peak_flux": [float(self.image_peak[i]) for i in rows],
            "dynamic_range": [img["dynamic_range"][i] for i in rows],
            "beam_major": [img["beam_major_arcsec"][i] for i in rows],
            "beam_minor": [img["beam_minor_arcsec"][i] for i in rows],
            "beam_pa": [img["beam_pa_deg"][i] for i in rows],
            "num_sources": rng.integers(5, 400, n).tolist(),
            "thumbnail_path": [img["path"][i].removesuffix(".fits") + ".png" for i in rows],
            "overall_quality": quality,
            "timestamp": [img["created_at"][i] + 120 for i in rows],
        }
        return data

    def calibration_qa(self) -> dict[str, Any]:
        ms = self.ms
        rng = self.rng
        rows = np.flatnonzero(self.ms_progress >= MS_STAGES.index("calibrated"))
        n = len(rows)
        flagged = rng.beta(2, 20, n)
        flagged[rng.random(n) < 0.05] = rng.uniform(0.35, 0.7)
        k = [json.dumps({"delay_rms_ns": round(float(v), 3)}) for v in rng.lognormal(np.log(1.5), 0.4, n)]
        bp = [
            json.dumps({"amp_rms": round(float(a), 4), "phase_rms_deg": round(float(p), 2)})
            for a, p in zip(
                rng.lognormal(np.log(0.03), 0.4, n), rng.lognormal(np.log(4), 0.4, n), strict=True
            )
        ]
        g = [json.dumps({"amp_scatter": round(float(a), 4)}) for a in rng.lognormal(np.log(0.05), 0.4, n)]
        if n:
            bp[0] = "{not json"  # real tables hold the odd broken blob
        spw = [json.dumps([{"spw": s, "flagged": round(float(f), 3)} for s in range(2)]) for f in flagged]
        return {
            "id": list(range(1, n + 1)),
            "ms_path": [ms["path"][i] for i in rows],
            "job_id": [None] * n,
            "k_metrics": k,
            "bp_metrics": bp,
            "g_metrics": g,
            "overall_quality": ["poor" if f > 0.3 else "good" for f in flagged],
            "flags_total": flagged.tolist(),
            "per_spw_stats": spw,
            "timestamp": [ms["stage_updated_at"][i] for i in rows],
        }

    # ----------------------------------------------------------------------------------- batches
    def batches(self) -> tuple[dict[str, Any], dict[str, Any]]:
        jobs = self.jobs_data
        n_batches = 3
        items: dict[str, list[Any]] = {name: [] for name, _ in NEWER["batch_job_items"]}
        batch_rows: dict[str, list[Any]] = {name: [] for name, _ in NEWER["batch_jobs"]}
        per = max(1, min(20, len(jobs["id"]) // n_batches))
        item_id = 1
        for b in range(n_batches):
            members = range(b * per, min((b + 1) * per, len(jobs["id"])))
            statuses = [jobs["status"][j] for j in members]
            batch_rows["id"].append(b + 1)
            batch_rows["type"].append("reimage")
            batch_rows["created_at"].append(jobs["created_at"][members[0]] if members else self.now_unix)
            batch_rows["status"].append("completed" if all(s == "completed" for s in statuses) else "partial")
            batch_rows["total_items"].append(len(statuses))
            batch_rows["completed_items"].append(sum(s == "completed" for s in statuses))
            batch_rows["failed_items"].append(sum(s == "failed" for s in statuses))
            batch_rows["params"].append(json.dumps({"niter": 2000}))
            for j in members:
                items["id"].append(item_id)
                items["batch_id"].append(b + 1)
                items["ms_path"].append(jobs["ms_path"][j])
                items["job_id"].append(jobs["id"][j])
                items["status"].append(jobs["status"][j])
                items["error"].append("imaging failed" if jobs["status"][j] == "failed" else None)
                items["started_at"].append(jobs["started_at"][j])
                items["completed_at"].append(jobs["finished_at"][j])
                items["data_id"].append(None)
                item_id += 1
        return batch_rows, items

    # ------------------------------------------------------------------------------- ingest queue
    def ingest_queue(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The streaming converter's queue: old groups done (a few failed after retries), a few stuck in
        progress for days, the newest still collecting their subband files."""
        rng = self.rng
        groups = list(self.ms["group_id"][-min(len(self.ms["group_id"]), 60) :])
        last = datetime.fromisoformat(groups[-1]).replace(tzinfo=UTC).timestamp()
        groups += [
            datetime.fromtimestamp(last + 300 * (k + 1), tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
            for k in range(4)
        ]
        n = len(groups)
        state = ["completed"] * n
        for k in range(n - 4, n):
            state[k] = "collecting"
        state[n - 6], state[n - 5] = "pending", "in_progress"
        for k in (3, 11, 19):
            state[k] = "failed"
        for k in (5, 15):
            state[k] = "in_progress"  # stuck: last update days ago
        rows, files = [], []
        for k, group in enumerate(groups):
            received = datetime.fromisoformat(group).replace(tzinfo=UTC).timestamp() + 310
            last_update = min(received + float(rng.uniform(60, 900)), self.now_unix - 30)
            if k in (5, 15):
                last_update = self.now_unix - float(rng.uniform(2, 4)) * SECONDS_PER_DAY
            present = list(range(EXPECTED_SUBBANDS))
            if state[k] == "collecting":
                present = sorted(
                    rng.choice(EXPECTED_SUBBANDS, int(rng.integers(3, 15)), replace=False).tolist()
                )
            elif state[k] == "failed" and k == 11:
                present.remove(int(rng.integers(0, EXPECTED_SUBBANDS)))  # a subband never arrived
            retries = int(rng.integers(1, 4)) if state[k] == "failed" else 0
            rows.append(
                (
                    group,
                    state[k],
                    received,
                    last_update,
                    EXPECTED_SUBBANDS,
                    retries,
                    "conversion failed: missing subband" if state[k] == "failed" else None,
                    f"/stage/checkpoints/{group}.ckpt" if state[k] == "in_progress" else None,
                    {"in_progress": "conversion", "completed": "done", "failed": "conversion"}.get(state[k]),
                    5,
                )
            )
            files += [(group, sb, f"{INCOMING_ROOT}/{group}_sb{sb:02d}.hdf5") for sb in present]
        return rows, files

    # -------------------------------------------------------------------------------- cal tables
    def caltables(self) -> dict[str, Any]:
        rng = self.rng
        ms = self.ms
        first, last = ms["start_mjd"][0], ms["end_mjd"][-1]
        # One set a day whose windows tile the whole span; the newest is active, older ones retired,
        # plus a failed re-solve that overlaps day 1 (it must never be applied).
        n_days = max(2, math.ceil(last - first + 0.25))
        plans = [
            (first - 0.25 + d, "active" if d == n_days - 1 else "retired", "3C286") for d in range(n_days)
        ]
        plans.append((first + 0.75, "failed", "3C48"))
        data: dict[str, list[Any]] = {name: [] for name, _ in CALTABLES}
        row_id = 1
        for valid_start, status, calibrator in plans:
            valid_end = valid_start + 1.0
            day = datetime.fromtimestamp(float(mjd_to_unix(valid_start)), tz=UTC).strftime("%Y-%m-%d")
            set_name = f"{day}_{calibrator}"
            near = int(np.searchsorted(np.asarray(ms["start_mjd"]), valid_start))
            source_ms = ms["path"][min(len(ms["path"]) - 1, near)]
            for order, table_type in enumerate(TABLE_TYPES):
                data["id"].append(row_id)
                data["set_name"].append(set_name)
                data["path"].append(f"{CAL_ROOT}/{set_name}.{table_type.lower()}cal")
                data["table_type"].append(table_type)
                data["order_index"].append(order)
                data["cal_field"].append(calibrator)
                data["refant"].append("pad103")
                data["created_at"].append(float(mjd_to_unix(valid_start)) + 1800)
                data["valid_start_mjd"].append(valid_start)
                data["valid_end_mjd"].append(valid_end)
                data["status"].append(status)
                data["notes"].append("solution diverged" if status == "failed" else None)
                data["source_ms_path"].append(source_ms)
                data["solver_command"].append(f"gaincal(vis, caltable, gaintype='{table_type}')")
                data["solver_version"].append("casatasks 6.6.5")
                data["solver_params"].append(json.dumps({"solint": "inf", "minsnr": 3.0}))
                data["quality_metrics"].append(
                    json.dumps({"snr_median": round(float(rng.uniform(20, 80)), 1), "flagged": 0.05})
                )
                row_id += 1
        return data


_LOGGERS = ("dsa110_contimg.conversion", "dsa110_contimg.calibration", "dsa110_contimg.imaging")


def _log_text(run_id: str, ms_path: str, status: str, t0: float, rng: np.random.Generator) -> str:
    lines: list[str] = []
    t = t0

    def stamp() -> str:
        nonlocal t
        t += float(rng.uniform(0.2, 30))
        moment = datetime.fromtimestamp(t, tz=UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S") + f",{moment.microsecond // 1000:03d}"

    lines.append(f"{stamp()} [INFO] Starting {run_id} for {ms_path}")
    for logger in _LOGGERS:
        lines.append(f"{stamp()} - {logger} - INFO - stage started")
        for _ in range(int(rng.integers(2, 6))):
            lines.append(f"{stamp()} - {logger} - DEBUG - processed chunk {int(rng.integers(0, 16))}")
        if rng.random() < 0.3:
            lines.append(f"{stamp()} - {logger} - WARNING - {int(rng.integers(1, 9))} antennas flagged")
    if status == "failed":
        lines.append(f"{stamp()} - dsa110_contimg.imaging - ERROR - imaging failed for {ms_path}")
        lines += [
            "Traceback (most recent call last):",
            '  File "/opt/dsa110_contimg/imaging/worker.py", line 212, in run',
            "    image = tclean(vis=ms_path, **params)",
            "RuntimeError: tclean: no unflagged data in MS",
        ]
        lines.append(f"{stamp()} [ERROR] {run_id} failed")
    elif status == "completed":
        lines.append(f"{stamp()} [INFO] {run_id} completed")
    elif status == "cancelled":
        lines.append(f"{stamp()} [WARNING] {run_id} cancelled by operator")
    return "\n".join(lines) + "\n"


_EXTRA_TABLES = (
    "CREATE TABLE transient_candidates (id INTEGER PRIMARY KEY, source_name TEXT, ra_deg REAL, dec_deg REAL, "
    "detection_mjd REAL, significance REAL)",
    "CREATE TABLE monitoring_sources (name TEXT PRIMARY KEY, ra_deg REAL, dec_deg REAL)",
    "CREATE TABLE hdf5_file_index (path TEXT PRIMARY KEY, group_id TEXT, subband INTEGER)",
    "CREATE TABLE storage_locations (id INTEGER PRIMARY KEY, name TEXT, root TEXT)",
)

_QUEUE_SCHEMA = """
CREATE TABLE ingest_queue (group_id TEXT PRIMARY KEY, state TEXT NOT NULL, received_at REAL, last_update REAL,
    expected_subbands INTEGER, retry_count INTEGER DEFAULT 0, error TEXT, checkpoint_path TEXT,
    processing_stage TEXT, chunk_minutes REAL);
CREATE TABLE subband_files (group_id TEXT NOT NULL, subband_idx INTEGER NOT NULL, path TEXT NOT NULL,
    PRIMARY KEY (group_id, subband_idx));
CREATE INDEX idx_queue_state ON ingest_queue(state);
CREATE INDEX idx_queue_update ON ingest_queue(last_update);
"""

_INDEXES = (
    "CREATE INDEX idx_ms_stage ON ms_index(stage)",
    "CREATE INDEX idx_ms_mid ON ms_index(mid_mjd)",
    "CREATE INDEX idx_images_ms ON images(ms_path)",
    "CREATE INDEX idx_images_created ON images(created_at)",
    "CREATE INDEX idx_phot_source ON photometry(source_id, mjd)",
    "CREATE INDEX idx_phot_image ON photometry(image_path)",
)
_JOB_INDEXES = (
    "CREATE INDEX idx_jobs_ms ON jobs(ms_path)",
    "CREATE INDEX idx_jobs_created ON jobs(created_at)",
)
_CAL_INDEXES = (
    "CREATE INDEX idx_cal_set ON caltables(set_name)",
    "CREATE INDEX idx_cal_valid ON caltables(valid_start_mjd, valid_end_mjd)",
)


def _open_new(path: Path) -> sqlite3.Connection:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    return conn


def _write_table(conn: sqlite3.Connection, table: str, schema: Schema, data: dict[str, Any]) -> None:
    columns = _columns_of(table, schema)
    _create_table(conn, table, columns)
    _insert(conn, table, columns, _rows(columns, data))


def build_demo_site(
    root: str | Path,
    *,
    scale: str | DemoSize = "small",
    seed: int = 110,
    schema: Schema = "newer",
    calibration_in_products: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> DemoSite:
    """Build (or rebuild) a demo site in ``root`` and return its paths.

    ``scale`` is ``"small"`` (tests), ``"bench"`` (10,000 images, 1,000,000 photometry rows) or a
    :class:`DemoSize`. ``schema="older"`` builds the older layout: no ``jobs`` table, short ``images``,
    ``ms_index`` and ``photometry`` tables. ``calibration_in_products`` keeps ``caltables`` inside the products
    database (newer deployments) instead of a separate registry. ``now`` anchors the time line (default: the
    current hour), so "last night" in the demo is last night.
    """
    size = SIZES[scale] if isinstance(scale, str) else scale
    if now is None:
        now = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0)
    root = Path(root)
    log_dir = root / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    b = _Builder(size, seed, now)
    steps = ["measurement sets", "images", "photometry", "jobs and logs", "QA", "calibration"]

    def tick(step: int) -> None:
        if progress is not None:
            progress(steps[min(step, len(steps) - 1)], step, len(steps))

    products = root / "products.sqlite3"
    conn = _open_new(products)
    try:
        with conn:
            tick(0)
            _write_table(conn, "ms_index", schema, b.measurement_sets())
            tick(1)
            _write_table(conn, "images", schema, b.images())
            tick(2)
            _write_table(conn, "photometry", schema, b.photometry())
            tick(3)
            b.jobs()
            texts = b.log_texts()
            if schema == "newer":
                # A few early jobs keep their log inline in the table instead of in a file.
                for k in range(3):
                    if b.jobs_data["run_id"][k] in texts:
                        b.jobs_data["logs"][k] = texts.pop(b.jobs_data["run_id"][k])
                _write_table(conn, "jobs", schema, b.jobs_data)
                batch_rows, items = b.batches()
                _write_table(conn, "batch_jobs", schema, batch_rows)
                _write_table(conn, "batch_job_items", schema, items)
                for stmt in _JOB_INDEXES:
                    conn.execute(stmt)
            for run_id, text in texts.items():
                (log_dir / f"{run_id}.log").write_text(text, encoding="utf-8")
            tick(4)
            if schema == "newer":
                _write_table(conn, "image_qa", schema, b.image_qa())
                _write_table(conn, "calibration_qa", schema, b.calibration_qa())
            for stmt in _EXTRA_TABLES + _INDEXES:
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO storage_locations (name, root) VALUES ('stage', '/stage/dsa110-contimg')"
            )
            tick(5)
            cal = b.caltables()
            if calibration_in_products:
                _write_table(conn, "caltables", schema, cal)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()

    registry: Path | None = None
    if not calibration_in_products:
        registry = root / "cal_registry.sqlite3"
        rconn = _open_new(registry)
        try:
            with rconn:
                _write_table(rconn, "caltables", schema, cal)
                for stmt in _CAL_INDEXES:
                    rconn.execute(stmt)
            rconn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            rconn.close()
    queue = root / "ingest_queue.sqlite3"
    qconn = _open_new(queue)
    try:
        rows, files = b.ingest_queue()
        with qconn:
            qconn.executescript(_QUEUE_SCHEMA)
            qconn.executemany("INSERT INTO ingest_queue VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            qconn.executemany("INSERT INTO subband_files VALUES (?, ?, ?)", files)
        qconn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        qconn.close()
    tick(len(steps))
    return DemoSite(
        root=root,
        products_db=products,
        cal_registry_db=registry,
        log_dir=log_dir,
        variable_sources=b.variable_sources,
        transient_source=b.transient_source,
        queue_db=queue,
    )
