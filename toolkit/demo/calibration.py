"""The calibration registry: one set a day tiling the whole span (the newest active), and a failed re-solve."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..mjd import mjd_to_unix
from ..schema import CALTABLES
from ..vocab import TABLE_TYPES
from .naming import CAL_ROOT
from .observations import Observations


def caltables(obs: Observations, rng: np.random.Generator) -> dict[str, Any]:
    ms = obs.data
    first, last = ms["start_mjd"][0], ms["end_mjd"][-1]
    # One set a day whose windows tile the whole span; the newest is active, older ones retired,
    # plus a failed re-solve that overlaps day 1 (it must never be applied).
    n_days = max(2, math.ceil(last - first + 0.25))
    plans = [(first - 0.25 + d, "active" if d == n_days - 1 else "retired", "3C286") for d in range(n_days)]
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
