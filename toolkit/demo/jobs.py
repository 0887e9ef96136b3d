"""Jobs in every status, their per-run log files (both of the pipeline's line formats), and batches."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..runids import run_id_for_ms
from ..schema import NEWER
from .naming import py
from .observations import Observations
from .products import Images

LOGGERS = ("dsa110_contimg.conversion", "dsa110_contimg.calibration", "dsa110_contimg.imaging")


def jobs(obs: Observations, imgs: Images, rng: np.random.Generator) -> dict[str, Any]:
    """One job per MS that got past conversion: imaging or calibration, in the MS's state."""
    ms = obs.data
    started_ms = obs.reached("converted")
    n = len(started_ms)
    job_type = ["imaging" if obs.progress[i] >= 3 else "calibration" for i in started_ms]
    status = []
    for i in started_ms:
        if obs.failed[i]:
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
    params = [
        json.dumps({"imsize": 2400, "cell_arcsec": 3.0, "niter": 1000, "robust": 0.5, "refant": "pad103"})
        for _ in started_ms
    ]
    images_by_ms: dict[str, list[str]] = {}
    for path, ms_path in zip(imgs.data["path"], imgs.data["ms_path"], strict=True):
        if ms_path:
            images_by_ms.setdefault(ms_path, []).append(path)
    artifacts = [json.dumps({"images": images_by_ms.get(ms["path"][i], [])}) for i in started_ms]
    logs: list[str | None] = [None] * n
    return {
        "id": list(range(1, n + 1)),
        "type": job_type,
        "status": status,
        "ms_path": [ms["path"][i] for i in started_ms],
        "run_id": [run_id_for_ms(ms["path"][i]) for i in started_ms],
        "params": params,
        "logs": logs,
        "artifacts": artifacts,
        "created_at": created.tolist(),
        "started_at": py(started, pending),
        "finished_at": py(finished, pending | running),
    }


def log_texts(job_rows: dict[str, Any], max_files: int, rng: np.random.Generator) -> dict[str, str]:
    """Log text per run id for the first ``max_files`` jobs that started: tracebacks for failed ones."""
    texts: dict[str, str] = {}
    for k in range(min(len(job_rows["id"]), max_files)):
        run_id, status = job_rows["run_id"][k], job_rows["status"][k]
        if status == "pending":
            continue
        t0 = job_rows["started_at"][k]
        texts[run_id] = log_text(run_id, job_rows["ms_path"][k], status, float(t0), rng)
    return texts


def log_text(run_id: str, ms_path: str, status: str, t0: float, rng: np.random.Generator) -> str:
    lines: list[str] = []
    t = t0

    def stamp() -> str:
        nonlocal t
        t += float(rng.uniform(0.2, 30))
        moment = datetime.fromtimestamp(t, tz=UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S") + f",{moment.microsecond // 1000:03d}"

    lines.append(f"{stamp()} [INFO] Starting {run_id} for {ms_path}")
    for logger in LOGGERS:
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


def batches(job_rows: dict[str, Any], now_unix: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Three re-imaging batches over the first jobs, and their items."""
    n_batches = 3
    items: dict[str, list[Any]] = {name: [] for name, _ in NEWER["batch_job_items"]}
    batch_rows: dict[str, list[Any]] = {name: [] for name, _ in NEWER["batch_jobs"]}
    per = max(1, min(20, len(job_rows["id"]) // n_batches))
    item_id = 1
    for b in range(n_batches):
        members = range(b * per, min((b + 1) * per, len(job_rows["id"])))
        statuses = [job_rows["status"][j] for j in members]
        batch_rows["id"].append(b + 1)
        batch_rows["type"].append("reimage")
        batch_rows["created_at"].append(job_rows["created_at"][members[0]] if members else now_unix)
        batch_rows["status"].append("completed" if all(s == "completed" for s in statuses) else "partial")
        batch_rows["total_items"].append(len(statuses))
        batch_rows["completed_items"].append(sum(s == "completed" for s in statuses))
        batch_rows["failed_items"].append(sum(s == "failed" for s in statuses))
        batch_rows["params"].append(json.dumps({"niter": 2000}))
        for j in members:
            items["id"].append(item_id)
            items["batch_id"].append(b + 1)
            items["ms_path"].append(job_rows["ms_path"][j])
            items["job_id"].append(job_rows["id"][j])
            items["status"].append(job_rows["status"][j])
            items["error"].append("imaging failed" if job_rows["status"][j] == "failed" else None)
            items["started_at"].append(job_rows["started_at"][j])
            items["completed_at"].append(job_rows["finished_at"][j])
            items["data_id"].append(None)
            item_id += 1
    return batch_rows, items
