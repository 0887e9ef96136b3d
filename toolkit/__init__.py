"""contimg-toolkit: explore a continuum-imaging pipeline's products from notebooks and scripts."""

from __future__ import annotations

from .cache import CacheStats
from .client import AsyncClient
from .domains.logs import GrepTruncatedWarning, LogLines, LogSummary
from .domains.provenance import Provenance
from .domains.services import ServiceCheck
from .errors import (
    ClientClosedError,
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseError,
    DatabaseQueryError,
    FileNotAccessibleError,
    InvalidPathError,
    PrivilegedRoleWarning,
    QueryTimeoutError,
    ReadOnlyError,
    RecordNotFoundError,
    ToolkitError,
    ValidationError,
)
from .qa import QAReport, QARules
from .records import (
    CalTable,
    Image,
    ImageQA,
    Job,
    JobQA,
    MeasurementSet,
    MeasurementSetQA,
    QueueGroup,
    QueueStats,
    Source,
    Stats,
)
from .science import EtaVResult
from .settings import Settings
from .sync import Client, run

__all__ = [
    "AsyncClient",
    "CacheStats",
    "CalTable",
    "Client",
    "ClientClosedError",
    "ConfigurationError",
    "DatabaseConnectionError",
    "DatabaseError",
    "DatabaseQueryError",
    "EtaVResult",
    "FileNotAccessibleError",
    "GrepTruncatedWarning",
    "Image",
    "ImageQA",
    "InvalidPathError",
    "Job",
    "JobQA",
    "LogLines",
    "LogSummary",
    "MeasurementSet",
    "MeasurementSetQA",
    "PrivilegedRoleWarning",
    "Provenance",
    "QAReport",
    "QARules",
    "QueryTimeoutError",
    "QueueGroup",
    "QueueStats",
    "ReadOnlyError",
    "RecordNotFoundError",
    "ServiceCheck",
    "Settings",
    "Source",
    "Stats",
    "ToolkitError",
    "ValidationError",
    "run",
]
__version__ = "0.1.0"
