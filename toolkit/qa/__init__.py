"""QA: rules (thresholds, TOML), vectorised grading, and reports. ``client.qa`` is the way in."""

from __future__ import annotations

from ..vocab import GRADES, STAGE_GRADES
from .grade import grade
from .report import QAReport
from .rules import CATALOGUE, ENV_QA_RULES, Metric, QARules, Rule

__all__ = [
    "CATALOGUE",
    "ENV_QA_RULES",
    "GRADES",
    "STAGE_GRADES",
    "Metric",
    "QAReport",
    "QARules",
    "Rule",
    "grade",
]
