"""The pipeline's QA tables: ``image_qa`` per image and mosaic, ``calibration_qa`` per calibrated MS."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .observations import Observations
from .products import Images


def image_qa(imgs: Images, rng: np.random.Generator) -> dict[str, Any]:
    img = imgs.data
    rows = [i for i, t in enumerate(img["type"]) if t in ("image", "mosaic")]
    noise = [img["noise_jy"][i] for i in rows]
    n = len(rows)
    quality = ["poor" if v is not None and v > 3e-3 else "good" for v in noise]
    return {
        "id": list(range(1, n + 1)),
        "ms_path": [img["ms_path"][i] for i in rows],
        "job_id": [None] * n,
        "image_path": [img["path"][i] for i in rows],
        "rms_noise": noise,
        "peak_flux": [float(imgs.peak[i]) for i in rows],
        "dynamic_range": [img["dynamic_range"][i] for i in rows],
        "beam_major": [img["beam_major_arcsec"][i] for i in rows],
        "beam_minor": [img["beam_minor_arcsec"][i] for i in rows],
        "beam_pa": [img["beam_pa_deg"][i] for i in rows],
        "num_sources": rng.integers(5, 400, n).tolist(),
        "thumbnail_path": [img["path"][i].removesuffix(".fits") + ".png" for i in rows],
        "overall_quality": quality,
        "timestamp": [img["created_at"][i] + 120 for i in rows],
    }


def calibration_qa(obs: Observations, rng: np.random.Generator) -> dict[str, Any]:
    ms = obs.data
    rows = obs.reached("calibrated")
    n = len(rows)
    flagged = rng.beta(2, 20, n)
    flagged[rng.random(n) < 0.05] = rng.uniform(0.35, 0.7)
    k = [json.dumps({"delay_rms_ns": round(float(v), 3)}) for v in rng.lognormal(np.log(1.5), 0.4, n)]
    bp = [
        json.dumps({"amp_rms": round(float(a), 4), "phase_rms_deg": round(float(p), 2)})
        for a, p in zip(rng.lognormal(np.log(0.03), 0.4, n), rng.lognormal(np.log(4), 0.4, n), strict=True)
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
