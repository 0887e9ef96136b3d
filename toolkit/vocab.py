"""The pipeline's vocabularies, in one place: stages, statuses, states, types and grades.

The areas validate filters against these, QA grades with them, the panels offer them in their dropdowns, the
demo generator writes them and the CLI lists them. A value the pipeline adds later is still accepted where a
database holds it (see ``domains/filters.explain_empty``); these are the values every database may hold.
"""

from __future__ import annotations

from typing import Final

# An MS moves through these in order; QA's stage rules compare positions in this tuple.
MS_STAGES: Final[tuple[str, ...]] = (
    "ingested",
    "converted",
    "calibrated",
    "imaged",
    "mosaicked",
    "cataloged",
)
MS_STATUSES: Final[tuple[str, ...]] = ("pending", "in_progress", "completed", "failed")
JOB_STATUSES: Final[tuple[str, ...]] = ("pending", "running", "completed", "failed", "cancelled")
QUEUE_STATES: Final[tuple[str, ...]] = ("collecting", "pending", "in_progress", "completed", "failed")
# Queue states in which a group is still open (the ones ``queue.stuck`` looks at).
QUEUE_FINISHED: Final[tuple[str, ...]] = ("completed", "failed")
IMAGE_TYPES: Final[tuple[str, ...]] = ("image", "pbcor", "residual", "model", "mosaic")
# Calibration table types in apply order (the pipeline's order_index).
TABLE_TYPES: Final[tuple[str, ...]] = ("K", "BA", "BP", "GA", "GP", "2G", "FLUX")
CAL_STATUSES: Final[tuple[str, ...]] = ("active", "retired", "failed")
GRADES: Final[tuple[str, ...]] = ("good", "warn", "fail", "not assessed")

# The pipeline's own grading rule, by MS stage. Listings report it as ``qa_grade`` (computed in SQL by
# ``stage_grade_sql``); ``client.qa`` falls back to it for objects with no metric at all.
STAGE_GRADES: Final[dict[str, str]] = {
    "ingested": "fail",
    "converted": "fail",
    "calibrated": "warn",
    "imaged": "good",
    "mosaicked": "good",
    "cataloged": "good",
}


def stage_grade_sql(stage_column: str) -> str:
    """``STAGE_GRADES`` as a SQL CASE on ``stage_column``: NULL for no stage and, as the pipeline's API did,
    'fail' for a stage the table does not name."""
    whens = " ".join(
        f"WHEN {stage_column} = '{stage}' THEN '{grade}'" for stage, grade in STAGE_GRADES.items()
    )
    return f"CASE WHEN {stage_column} IS NULL THEN NULL {whens} ELSE 'fail' END"


# Without a jobs table the pipeline shows one job per MS, its status taken from the MS's (else "pending").
JOB_STATUS_OF_MS_STATUS: Final[dict[str, str]] = {
    "completed": "completed",
    "failed": "failed",
    "in_progress": "running",
}
