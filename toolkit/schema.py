"""The pipeline's tables as the toolkit knows them: one place for names and kinds of columns.

Each column has a *kind* that fixes its pandas dtype on every database:
``int`` -> Int64, ``real`` -> float64 (MJDs stay floats), ``text``/``json`` -> str,
``time`` (unix seconds) -> datetime64[ns, UTC], ``bool`` (0/1 integers) -> boolean.

``NEWER`` lists every column of the newest schema; ``OLDER`` the subset that older databases have. The SQL
builders select ``NULL AS col`` for a column a database lacks, so frames have the same columns everywhere.
"""

from __future__ import annotations

from typing import Final, Literal

Kind = Literal["int", "real", "text", "json", "time", "bool"]
Table = tuple[tuple[str, Kind], ...]

MS_INDEX: Final[Table] = (
    ("path", "text"),
    ("start_mjd", "real"),
    ("end_mjd", "real"),
    ("mid_mjd", "real"),
    ("processed_at", "time"),
    ("status", "text"),
    ("stage", "text"),
    ("stage_updated_at", "time"),
    ("cal_applied", "bool"),
    ("imagename", "text"),
    ("ra_deg", "real"),
    ("dec_deg", "real"),
    ("pointing_ra_deg", "real"),
    ("pointing_dec_deg", "real"),
    ("field_name", "text"),
    ("group_id", "text"),
    ("created_at", "time"),
)

IMAGES: Final[Table] = (
    ("id", "int"),
    ("path", "text"),
    ("ms_path", "text"),
    ("created_at", "time"),
    ("type", "text"),
    ("beam_major_arcsec", "real"),
    ("noise_jy", "real"),
    ("pbcor", "bool"),
    ("format", "text"),
    ("beam_minor_arcsec", "real"),
    ("beam_pa_deg", "real"),
    ("dynamic_range", "real"),
    ("field_name", "text"),
    ("center_ra_deg", "real"),
    ("center_dec_deg", "real"),
    ("imsize_x", "int"),
    ("imsize_y", "int"),
    ("cellsize_arcsec", "real"),
    ("freq_ghz", "real"),
    ("bandwidth_mhz", "real"),
    ("integration_sec", "real"),
)

PHOTOMETRY: Final[Table] = (
    ("id", "int"),
    ("source_id", "text"),
    ("image_path", "text"),
    ("ra_deg", "real"),
    ("dec_deg", "real"),
    ("nvss_flux_mjy", "real"),
    ("peak_jyb", "real"),
    ("peak_err_jyb", "real"),
    ("flux_jy", "real"),
    ("flux_err_jy", "real"),
    ("normalized_flux_jy", "real"),
    ("normalized_flux_err_jy", "real"),
    ("measured_at", "time"),
    ("mjd", "real"),
    ("mosaic_path", "text"),
    ("snr", "real"),
    ("local_rms", "real"),
    ("rms_jy", "real"),
    ("sep_from_center_deg", "real"),
    ("quality_flag", "text"),
    ("flags", "text"),
)

JOBS: Final[Table] = (
    ("id", "int"),
    ("type", "text"),
    ("status", "text"),
    ("ms_path", "text"),
    ("run_id", "text"),
    ("params", "json"),
    ("logs", "text"),
    ("artifacts", "json"),
    ("created_at", "time"),
    ("started_at", "time"),
    ("finished_at", "time"),
)

BATCH_JOBS: Final[Table] = (
    ("id", "int"),
    ("type", "text"),
    ("created_at", "time"),
    ("status", "text"),
    ("total_items", "int"),
    ("completed_items", "int"),
    ("failed_items", "int"),
    ("params", "json"),
)

BATCH_JOB_ITEMS: Final[Table] = (
    ("id", "int"),
    ("batch_id", "int"),
    ("ms_path", "text"),
    ("job_id", "int"),
    ("status", "text"),
    ("error", "text"),
    ("started_at", "time"),
    ("completed_at", "time"),
    ("data_id", "text"),
)

IMAGE_QA: Final[Table] = (
    ("id", "int"),
    ("ms_path", "text"),
    ("job_id", "int"),
    ("image_path", "text"),
    ("rms_noise", "real"),
    ("peak_flux", "real"),
    ("dynamic_range", "real"),
    ("beam_major", "real"),
    ("beam_minor", "real"),
    ("beam_pa", "real"),
    ("num_sources", "int"),
    ("thumbnail_path", "text"),
    ("overall_quality", "text"),
    ("timestamp", "time"),
)

CALIBRATION_QA: Final[Table] = (
    ("id", "int"),
    ("ms_path", "text"),
    ("job_id", "int"),
    ("k_metrics", "json"),
    ("bp_metrics", "json"),
    ("g_metrics", "json"),
    ("overall_quality", "text"),
    ("flags_total", "real"),
    ("per_spw_stats", "json"),
    ("timestamp", "time"),
)

CALTABLES: Final[Table] = (
    ("id", "int"),
    ("set_name", "text"),
    ("path", "text"),
    ("table_type", "text"),
    ("order_index", "int"),
    ("cal_field", "text"),
    ("refant", "text"),
    ("created_at", "time"),
    ("valid_start_mjd", "real"),
    ("valid_end_mjd", "real"),
    ("status", "text"),
    ("notes", "text"),
    ("source_ms_path", "text"),
    ("solver_command", "text"),
    ("solver_version", "text"),
    ("solver_params", "json"),
    ("quality_metrics", "json"),
)

NEWER: Final[dict[str, Table]] = {
    "ms_index": MS_INDEX,
    "images": IMAGES,
    "photometry": PHOTOMETRY,
    "jobs": JOBS,
    "batch_jobs": BATCH_JOBS,
    "batch_job_items": BATCH_JOB_ITEMS,
    "image_qa": IMAGE_QA,
    "calibration_qa": CALIBRATION_QA,
    "caltables": CALTABLES,
}


def _names(table: Table, upto: str) -> tuple[str, ...]:
    names = tuple(name for name, _ in table)
    return names[: names.index(upto) + 1]


# Columns of the older schema (the newer ones were added after these).
OLDER: Final[dict[str, tuple[str, ...]]] = {
    "ms_index": _names(MS_INDEX, "pointing_dec_deg"),
    "images": _names(IMAGES, "pbcor"),
    "photometry": _names(PHOTOMETRY, "mosaic_path"),
    "jobs": tuple(name for name, _ in JOBS if name != "run_id"),
}


def kinds(table: str) -> dict[str, Kind]:
    return dict(NEWER[table])


def column_names(table: str) -> tuple[str, ...]:
    return tuple(name for name, _ in NEWER[table])
