"""contimg-toolkit: explore a continuum-imaging pipeline's products from notebooks and scripts."""

from __future__ import annotations

from .cache import CacheStats
from .client import AsyncClient
from .domains.cal import CalFilters
from .domains.images import ImageFilters
from .domains.jobs import JobFilters
from .domains.logs import GrepTruncatedWarning, LogLines, LogSummary
from .domains.ms import MSFilters
from .domains.notes import NotesBatch, NotesImport
from .domains.paging import Cursor, Page
from .domains.provenance import Provenance
from .domains.queue import QueueFilters
from .domains.services import ServiceCheck
from .domains.sources import SourceFilters
from .errors import (
    ClientClosedError,
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseError,
    DatabaseQueryError,
    FileNotAccessibleError,
    InvalidPathError,
    NotesUnavailableWarning,
    NotesWriteError,
    PrivilegedRoleWarning,
    QueryTimeoutError,
    ReadOnlyError,
    RecordNotFoundError,
    ToolkitError,
    ValidationError,
)
from .export import ExportResult
from .notes.model import NoteEvent
from .qa import QAReport, QARules
from .records import (
    CalTable,
    Image,
    ImageQA,
    Job,
    JobQA,
    MeasurementSet,
    MeasurementSetQA,
    Night,
    PipelineJob,
    PipelineQueueStats,
    QueueGroup,
    QueueStats,
    Source,
    SourceQA,
    Stats,
)
from .science import EtaVResult
from .settings import Settings
from .sync import Client, run

__all__ = [
    "AsyncClient",
    "CacheStats",
    "CalFilters",
    "CalTable",
    "Client",
    "ClientClosedError",
    "ConfigurationError",
    "Cursor",
    "DatabaseConnectionError",
    "DatabaseError",
    "DatabaseQueryError",
    "EtaVResult",
    "ExportResult",
    "FileNotAccessibleError",
    "GrepTruncatedWarning",
    "Image",
    "ImageFilters",
    "ImageQA",
    "InvalidPathError",
    "Job",
    "JobFilters",
    "JobQA",
    "LogLines",
    "LogSummary",
    "MSFilters",
    "MeasurementSet",
    "MeasurementSetQA",
    "Night",
    "NoteEvent",
    "NotesBatch",
    "NotesImport",
    "NotesUnavailableWarning",
    "NotesWriteError",
    "Page",
    "PipelineJob",
    "PipelineQueueStats",
    "PrivilegedRoleWarning",
    "Provenance",
    "QAReport",
    "QARules",
    "QueryTimeoutError",
    "QueueFilters",
    "QueueGroup",
    "QueueStats",
    "ReadOnlyError",
    "RecordNotFoundError",
    "ServiceCheck",
    "Settings",
    "Source",
    "SourceFilters",
    "SourceQA",
    "Stats",
    "ToolkitError",
    "ValidationError",
    "run",
]
__version__ = "0.1.0"
