"""Run ids: the pipeline's name for one processing run of one MS.

``jobs.run_id`` holds them where that column exists; otherwise the pipeline derives one from the MS file
name, ``.../2025-10-05T12:30:00.ms`` -> ``job-2025-10-05-123000``, and the toolkit accepts that form too.
"""

from __future__ import annotations

import re

import pandas as pd

_MS_STEM = re.compile(r"(?:^|/)(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})\.ms/?$")
_DERIVED = re.compile(r"^job-(\d{4}-\d{2}-\d{2})-(\d{2})(\d{2})(\d{2})$")


def run_id_for_ms(ms_path: str) -> str | None:
    """The derived run id of an MS path, or None when the name is not in the pipeline's form."""
    match = _MS_STEM.search(ms_path)
    if match is None:
        return None
    date, hh, mm, ss = match.groups()
    return f"job-{date}-{hh}{mm}{ss}"


def run_ids_for_ms(ms_paths: pd.Series) -> pd.Series:
    """Vectorised :func:`run_id_for_ms` over a column of MS paths (NA where no run id can be derived)."""
    parts = ms_paths.astype("str").str.extract(_MS_STEM)
    derived = "job-" + parts[0] + "-" + parts[1] + parts[2] + parts[3]
    return derived.astype("str")


def ms_name_for_run_id(run_id: str) -> str | None:
    """The MS file name a derived run id came from (``job-2025-10-05-123000`` -> ``2025-10-05T12:30:00.ms``)."""
    match = _DERIVED.match(run_id)
    if match is None:
        return None
    date, hh, mm, ss = match.groups()
    return f"{date}T{hh}:{mm}:{ss}.ms"


def fill_run_ids(frame: pd.DataFrame, ms_path_column: str = "ms_path") -> pd.DataFrame:
    """Where the jobs table gave no ``run_id``, derive the pipeline's one from the MS name."""
    missing = frame["run_id"].isna() & frame[ms_path_column].notna()
    if missing.any():
        frame.loc[missing, "run_id"] = run_ids_for_ms(frame.loc[missing, ms_path_column])
    return frame


def fill_ms_run_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """``fill_run_ids`` for frames of MS, whose MS path is ``path``."""
    return fill_run_ids(frame, "path")
