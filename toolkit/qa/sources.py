"""Source QA metrics: one row per source from its measurements and the grades of the images they were made in
(pure, vectorised: groupby sums and sorts, no Python per source). The thresholds are the ``[source.*]``
rules; :func:`toolkit.qa.grade.grade` turns these metrics into grades and reasons.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..science import separation_deg

# Measurement columns the metrics read (flux with the pipeline's peak fallback already applied).
MEASUREMENT_COLUMNS = ("source_id", "mjd", "flux", "ra_deg", "dec_deg", "image_path", "sep_from_center_deg")
# Image columns: the image grade and its centre (NA where the schema does not record it).
IMAGE_COLUMNS = ("path", "grade", "center_ra_deg", "center_dec_deg")
# Below these counts a gap or an outlier is not meaningful: the check is "not assessed".
MIN_FOR_GAPS = 5
MIN_FOR_OUTLIERS = 5
OUTLIER_SIGMA = 5.0
MAD_TO_SIGMA = 1.4826

METRIC_COLUMNS = (
    "n_measurements",
    "n_on_failed_images",
    "n_on_warned_images",
    "failed_image_pct",
    "warned_image_pct",
    "median_cadence_days",
    "max_gap_days",
    "gap_ratio",
    "n_flux_outliers",
    "max_center_distance_deg",
)


def source_metrics(measurements: pd.DataFrame, images: pd.DataFrame) -> pd.DataFrame:
    """One row per source (sorted by id): counts on failed/warned images, cadence and largest gap, robust
    flux outliers, and the largest distance from an image centre (photometry's ``sep_from_center_deg``
    where recorded, else computed from the image's centre; NaN where neither is known)."""
    m = measurements.loc[measurements["source_id"].notna(), list(MEASUREMENT_COLUMNS)]
    m = m.sort_values(["source_id", "mjd"], kind="stable", ignore_index=True)
    codes, names = pd.factorize(m["source_id"], sort=True)
    k = len(names)
    n = np.bincount(codes, minlength=k).astype("float64")

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(codes[mask], minlength=k).astype("float64")

    by_path = images.drop_duplicates("path").set_index("path")
    grade = m["image_path"].map(by_path["grade"]).to_numpy(dtype=object)
    failed, warned = count(grade == "fail"), count(grade == "warn")

    # Gaps: differences of sorted MJDs inside each source (the first row of a source has none).
    mjd = m["mjd"].to_numpy(dtype="float64", na_value=np.nan)
    same = np.r_[False, codes[1:] == codes[:-1]]
    gaps = pd.Series(np.where(same, np.diff(mjd, prepend=np.nan), np.nan))
    gap_groups = gaps.groupby(codes)
    median_gap = gap_groups.median().reindex(range(k)).to_numpy()
    max_gap = gap_groups.max().reindex(range(k)).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((n >= MIN_FOR_GAPS) & (median_gap > 0), max_gap / median_gap, np.nan)

    # Outliers: |f - median| > 5 robust sigma, where the source has enough measurements and any spread.
    flux = pd.to_numeric(m["flux"], errors="coerce").astype("float64")
    median = flux.groupby(codes).transform("median")
    deviation = (flux - median).abs()
    sigma = deviation.groupby(codes).transform("median") * MAD_TO_SIGMA
    outlier = (deviation > OUTLIER_SIGMA * sigma) & (sigma > 0)
    outliers = count(outlier.to_numpy(dtype=bool))
    enough = count(flux.notna().to_numpy()) >= MIN_FOR_OUTLIERS
    outliers = np.where(enough, outliers, np.nan)

    # Distance from the image centre: recorded, else from the image's centre where the schema has one.
    recorded = pd.to_numeric(m["sep_from_center_deg"], errors="coerce").to_numpy(dtype="float64")
    centre_ra = pd.to_numeric(m["image_path"].map(by_path["center_ra_deg"]), errors="coerce")
    centre_dec = pd.to_numeric(m["image_path"].map(by_path["center_dec_deg"]), errors="coerce")
    computed = separation_deg(
        m["ra_deg"].to_numpy(dtype="float64", na_value=np.nan),
        m["dec_deg"].to_numpy(dtype="float64", na_value=np.nan),
        centre_ra.to_numpy(dtype="float64", na_value=np.nan),
        centre_dec.to_numpy(dtype="float64", na_value=np.nan),
    )
    distance = pd.Series(np.where(np.isfinite(recorded), recorded, computed))
    max_distance = distance.groupby(codes).max().reindex(range(k)).to_numpy()

    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame(
            {
                "source_id": pd.Series(np.asarray(names, dtype=object), dtype="str"),
                "n_measurements": n.astype("int64"),
                "n_on_failed_images": failed.astype("int64"),
                "n_on_warned_images": warned.astype("int64"),
                "failed_image_pct": 100.0 * failed / n,
                "warned_image_pct": 100.0 * warned / n,
                "median_cadence_days": median_gap,
                "max_gap_days": max_gap,
                "gap_ratio": ratio,
                "n_flux_outliers": outliers,
                "max_center_distance_deg": max_distance,
            }
        )
