"""The streaming converter's ingest queue: old groups done (a few failed after retries), a few stuck in
progress for days, the newest still collecting their subband files."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..mjd import SECONDS_PER_DAY
from .naming import EXPECTED_SUBBANDS, INCOMING_ROOT
from .observations import Observations

SCHEMA = """
CREATE TABLE ingest_queue (group_id TEXT PRIMARY KEY, state TEXT NOT NULL, received_at REAL, last_update REAL,
    expected_subbands INTEGER, retry_count INTEGER DEFAULT 0, error TEXT, checkpoint_path TEXT,
    processing_stage TEXT, chunk_minutes REAL);
CREATE TABLE subband_files (group_id TEXT NOT NULL, subband_idx INTEGER NOT NULL, path TEXT NOT NULL,
    PRIMARY KEY (group_id, subband_idx));
CREATE INDEX idx_queue_state ON ingest_queue(state);
CREATE INDEX idx_queue_update ON ingest_queue(last_update);
"""
_STUCK = (5, 15)  # groups in progress whose last update was days ago
_FAILED = (3, 11, 19)
_STAGE_OF_STATE = {"in_progress": "conversion", "completed": "done", "failed": "conversion"}


def ingest_queue(
    obs: Observations, rng: np.random.Generator, now_unix: float
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(``ingest_queue`` rows, ``subband_files`` rows) for the newest 60 MS groups and four still arriving."""
    group_ids = obs.data["group_id"]
    groups = list(group_ids[-min(len(group_ids), 60) :])
    last = datetime.fromisoformat(groups[-1]).replace(tzinfo=UTC).timestamp()
    groups += [
        datetime.fromtimestamp(last + 300 * (k + 1), tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") for k in range(4)
    ]
    n = len(groups)
    state = ["completed"] * n
    for k in range(n - 4, n):
        state[k] = "collecting"
    state[n - 6], state[n - 5] = "pending", "in_progress"
    for k in _FAILED:
        state[k] = "failed"
    for k in _STUCK:
        state[k] = "in_progress"
    rows, files = [], []
    for k, group in enumerate(groups):
        received = datetime.fromisoformat(group).replace(tzinfo=UTC).timestamp() + 310
        last_update = min(received + float(rng.uniform(60, 900)), now_unix - 30)
        if k in _STUCK:
            last_update = now_unix - float(rng.uniform(2, 4)) * SECONDS_PER_DAY
        present = list(range(EXPECTED_SUBBANDS))
        if state[k] == "collecting":
            present = sorted(rng.choice(EXPECTED_SUBBANDS, int(rng.integers(3, 15)), replace=False).tolist())
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
                _STAGE_OF_STATE.get(state[k]),
                5,
            )
        )
        files += [(group, sb, f"{INCOMING_ROOT}/{group}_sb{sb:02d}.hdf5") for sb in present]
    return rows, files
