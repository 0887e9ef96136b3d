"""Measurement sets: one every five minutes, the newest still in flight, a few failed or stuck for days."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..mjd import SECONDS_PER_DAY, mjd_to_unix
from ..vocab import MS_STAGES
from .naming import DSA110_DEC, IMAGE_ROOT, MS_ROOT, ms_name, py
from .site import DemoSize


@dataclass(frozen=True)
class Observations:
    """The ``ms_index`` columns, and what the later generators need to know of each MS."""

    data: dict[str, Any]
    progress: np.ndarray  # index into MS_STAGES of each MS's stage
    failed: np.ndarray  # bool per MS

    def reached(self, stage: str) -> np.ndarray:
        """Indices of the MS that got at least as far as ``stage``."""
        return np.flatnonzero(self.progress >= MS_STAGES.index(stage))


def measurement_sets(
    size: DemoSize, rng: np.random.Generator, now_unix: float, now_mjd: float
) -> Observations:
    n = size.n_ms
    cadence = 5.0 / 1440.0  # one MS every 5 minutes
    start = now_mjd - 0.5 / 24 - n * cadence
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
    stage_updated_at[stuck] = now_unix - rng.uniform(2, 5, stuck.sum()) * SECONDS_PER_DAY
    stage_updated_at = np.minimum(stage_updated_at, now_unix - 60)
    cal_applied = (progress >= MS_STAGES.index("calibrated")).astype(int)
    cal_applied[done & (rng.random(n) < 0.02)] = 0

    pointing_ra = (280.46061837 + 360.98564736629 * (mid_mjd - 51544.5)) % 360.0
    pointing_dec = np.full(n, DSA110_DEC)
    no_pointing = rng.random(n) < 0.05
    data: dict[str, Any] = {
        "path": paths,
        "start_mjd": start_mjd.tolist(),
        "end_mjd": end_mjd.tolist(),
        "mid_mjd": mid_mjd.tolist(),
        "processed_at": py(processed_at, progress == 0),
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
        "pointing_ra_deg": py(pointing_ra, no_pointing),
        "pointing_dec_deg": py(pointing_dec, no_pointing),
        "field_name": [f"drift_{int(r // 15):02d}h" for r in pointing_ra],
        "group_id": [p.rsplit("/", 1)[1].removesuffix(".ms") for p in paths],
        "created_at": (mjd_to_unix(start_mjd) + 30).tolist(),
    }
    return Observations(data, progress, failed)
