"""contimg-toolkit: explore a continuum-imaging pipeline's products from notebooks and scripts."""

from __future__ import annotations

from .client import AsyncClient
from .errors import (
    ClientClosedError,
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseError,
    DatabaseQueryError,
    FileNotAccessibleError,
    InvalidPathError,
    QueryTimeoutError,
    ReadOnlyError,
    RecordNotFoundError,
    ToolkitError,
    ValidationError,
)
from .qa import QAReport, QARules
from .records import CalTable, Image, ImageQA, Job, JobQA, MeasurementSet, MeasurementSetQA, Source, Stats
from .settings import Settings
from .sync import Client, run

__all__ = [
    "AsyncClient",
    "CalTable",
    "Client",
    "ClientClosedError",
    "ConfigurationError",
    "DatabaseConnectionError",
    "DatabaseError",
    "DatabaseQueryError",
    "FileNotAccessibleError",
    "Image",
    "ImageQA",
    "InvalidPathError",
    "Job",
    "JobQA",
    "MeasurementSet",
    "MeasurementSetQA",
    "QAReport",
    "QARules",
    "QueryTimeoutError",
    "ReadOnlyError",
    "RecordNotFoundError",
    "Settings",
    "Source",
    "Stats",
    "ToolkitError",
    "ValidationError",
    "run",
]
__version__ = "0.1.0"
