"""Settings: explicit arguments win over environment variables, which win over defaults."""

from __future__ import annotations

import getpass
import itertools
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import platformdirs

from .arguments import to_duration
from .errors import ConfigurationError, ValidationError
from .notes.model import DEFAULT_LABELS, check_author, check_labels

ENV_PRODUCTS_DB = "PIPELINE_PRODUCTS_DB"
ENV_CAL_REGISTRY_DB = "PIPELINE_CAL_REGISTRY_DB"
ENV_LOG_DIRS = "PIPELINE_LOG_DIRS"
ENV_QUERY_TIMEOUT = "CONTIMG_QUERY_TIMEOUT"
ENV_POOL_SIZE = "CONTIMG_POOL_SIZE"
ENV_QUEUE_DB = "PIPELINE_QUEUE_DB"
ENV_CACHE_BYTES = "CONTIMG_CACHE_BYTES"
ENV_CACHE_TTL = "CONTIMG_CACHE_TTL"
ENV_SERVICES = "CONTIMG_SERVICES"
ENV_CONNECT_TIMEOUT = "CONTIMG_CONNECT_TIMEOUT"
ENV_ALLOW_PRIVILEGED = "CONTIMG_ALLOW_PRIVILEGED"
ENV_NOTES_DB = "CONTIMG_NOTES_DB"
ENV_USER = "CONTIMG_USER"
ENV_NOTE_LABELS = "CONTIMG_NOTE_LABELS"
ENV_IMAGE_ROOTS = "CONTIMG_IMAGE_ROOTS"
ENV_PATH_MAP = "CONTIMG_PATH_MAP"
ENV_STATE_DIR = "DSA110_STATE_DIR"
ENV_MEMORY_BUDGET = "CONTIMG_MEMORY_BUDGET"
DEFAULT_MEMORY_BUDGET = 2**30  # 1 GiB
MIN_MEMORY_BUDGET = 2**14
MAX_MEMORY_BUDGET = 2**40
ENV_REDIS_URL = "PIPELINE_REDIS_URL"
ENV_QUEUE_NAME = "DSA110_QUEUE_NAME"
DEFAULT_QUEUE_NAME = "dsa110-pipeline"  # the pipeline API's RQ queue
# Where the pipeline keeps its state when nothing says otherwise (its API looks there too).
DEFAULT_STATE_DIR = Path("/data/dsa110-contimg/state")
STATE_FILES = {
    "products_db": "products.sqlite3",
    "cal_registry_db": "cal_registry.sqlite3",
    "queue_db": "ingest.sqlite3",
}
MAX_LOG_FOLDERS = 64

DEFAULT_QUERY_TIMEOUT = 30.0
DEFAULT_POOL_SIZE = 4
DEFAULT_CACHE_BYTES = 256 * 2**20
DEFAULT_CACHE_TTL = 300.0
DEFAULT_CONNECT_TIMEOUT = 10.0
# Upper bounds that keep every number a caller can set finite and meaningful.
MAX_SECONDS = 7 * 86400.0
MAX_POOL_SIZE = 64
MAX_CACHE_BYTES = 2**40


@dataclass(frozen=True)
class Endpoint:
    """A network service to check: ``tcp://host:port`` or ``http(s)://host:port/health-path``."""

    name: str
    scheme: str
    host: str
    port: int
    path: str = ""

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.path}"


@dataclass(frozen=True)
class Settings:
    """Where the pipeline's files are and how the toolkit talks to them.

    ``origins`` records where each value came from ("argument products_db", "environment PIPELINE_PRODUCTS_DB")
    so that an error about a value can name it.
    """

    products_db: Path | str | None = None  # a SQLite file, or a postgresql:// URL
    cal_registry_db: Path | str | None = None  # a SQLite file, or a postgresql:// URL
    log_dirs: tuple[Path, ...] = ()
    query_timeout: float = DEFAULT_QUERY_TIMEOUT
    pool_size: int = DEFAULT_POOL_SIZE
    queue_db: Path | str | None = None  # a SQLite file, or a postgresql:// URL
    cache_bytes: int = DEFAULT_CACHE_BYTES  # 0 turns the result cache off
    cache_ttl: float = DEFAULT_CACHE_TTL
    services: tuple[Endpoint, ...] = ()
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    allow_privileged: bool = False  # PostgreSQL: connect even as a role that could write (warns once)
    # The toolkit's own annotations: a SQLite file or a postgresql:// URL; None: the user's data folder.
    notes_db: Path | str | None = None
    user: str | None = None  # the author of annotations; None: the login name
    note_labels: tuple[str, ...] = DEFAULT_LABELS  # the labels notes.classify accepts
    # Image files: the folders they may be read from (empty: anywhere), and how the pipeline's paths map to
    # this machine's ("/stage/dsa110-contimg=/mnt/dsa110/stage": a prefix of the stored path, replaced).
    image_roots: tuple[Path, ...] = ()
    path_map: tuple[tuple[str, Path], ...] = ()
    # The pipeline's job queue: RQ on Redis (redis://host:port/db), read-only
    redis_url: str | None = None
    queue_name: str = DEFAULT_QUEUE_NAME
    # The peak memory the science calls aim for, whatever the table's size (bytes)
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    origins: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("query_timeout", "cache_ttl", "connect_timeout"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (0 < value <= MAX_SECONDS)  # NaN and inf fail here too
            ):
                raise ValidationError(
                    f"{name} must be a positive, finite number of seconds (at most {MAX_SECONDS:g}), "
                    f"got {value!r}"
                )
        if isinstance(self.pool_size, bool) or not isinstance(self.pool_size, int):
            raise ValidationError(f"pool_size must be a whole number, got {self.pool_size!r}")
        if not 1 <= self.pool_size <= MAX_POOL_SIZE:
            raise ValidationError(f"pool_size must be from 1 to {MAX_POOL_SIZE}, got {self.pool_size}")
        if (
            isinstance(self.memory_budget, bool)
            or not isinstance(self.memory_budget, int)
            or not MIN_MEMORY_BUDGET <= self.memory_budget <= MAX_MEMORY_BUDGET
        ):
            raise ValidationError(
                f"memory_budget must be bytes from {MIN_MEMORY_BUDGET:,} to {MAX_MEMORY_BUDGET:,} (or text such "
                f"as '512MiB' or '2GiB'), got {self.memory_budget!r}"
            )
        if isinstance(self.cache_bytes, bool) or not isinstance(self.cache_bytes, int):
            raise ValidationError(f"cache_bytes must be a whole number, got {self.cache_bytes!r}")
        if not 0 <= self.cache_bytes <= MAX_CACHE_BYTES:
            raise ValidationError(
                f"cache_bytes must be from 0 (the cache off) to {MAX_CACHE_BYTES:,}, got {self.cache_bytes}"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Resolve settings: keyword overrides, then ``env`` (default ``os.environ``), then defaults."""
        env = os.environ if env is None else env
        _reject_unknown(overrides)
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}

        for name, variable in _VARIABLES.items():
            if overrides.get(name) is not None:
                raw, origin = overrides[name], f"argument {name}"
            elif env.get(variable):
                raw, origin = env[variable], f"environment variable {variable}"
            else:
                continue
            values[name] = _convert(name, raw, origin)
            origins[name] = origin
        _discover(env, values, origins)
        return cls(**values, origins=origins)

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with some values replaced (their origin becomes the argument)."""
        _reject_unknown(overrides)
        converted = {k: _convert(k, v, f"argument {k}") for k, v in overrides.items() if v is not None}
        origins = {**self.origins, **{k: f"argument {k}" for k in converted}}
        return replace(self, **converted, origins=origins)

    def notes_location(self) -> tuple[Path | str, bool]:
        """Where the notes database is, and whether it was configured (False: the default in the user's
        data folder, ``platformdirs.user_data_dir("contimg")``)."""
        if self.notes_db is not None:
            return self.notes_db, True
        return Path(platformdirs.user_data_dir("contimg", appauthor=False)) / "notes.sqlite", False

    def author(self) -> str:
        """Who annotations are by: the ``user`` setting (``CONTIMG_USER``), else the login name."""
        if self.user is not None:
            return self.user
        try:
            return getpass.getuser()
        except (OSError, KeyError) as exc:  # no login name (a container without a passwd entry)
            raise ConfigurationError(
                f"cannot tell who you are: set {ENV_USER} to the name annotations should carry"
            ) from exc

    def local_path(self, stored: str) -> Path:
        """Where a path the pipeline recorded is on this machine: the longest ``path_map`` prefix that
        matches (whole folder names only) replaced by its target; the path itself when none matches."""
        for prefix, target in sorted(self.path_map, key=lambda pair: -len(pair[0])):
            if stored == prefix or stored.startswith(prefix.rstrip("/") + "/"):
                rest = stored[len(prefix.rstrip("/")) :].lstrip("/")
                return target / rest if rest else target
        return Path(stored)

    def origin(self, name: str) -> str:
        return self.origins.get(name, f"setting {name}")

    def require_products_db(self) -> Path | str:
        if self.products_db is None:
            looked = self.origins.get("state_dir", "")
            raise ConfigurationError(
                f"no products database configured: pass products_db=..., set {ENV_PRODUCTS_DB}, or set "
                f"{ENV_STATE_DIR} to the pipeline's state folder{f' ({looked})' if looked else ''} "
                "(run `contimg demo DIR` to build a demo site)"
            )
        return self.products_db

    def sources(self) -> dict[str, str]:
        """Each database and folder the client reads, with where the value came from."""
        shown = {}
        for name in (
            "products_db", "cal_registry_db", "queue_db", "notes_db", "log_dirs", "image_roots", "redis_url",
        ):  # fmt: skip
            value = getattr(self, name)
            if value is None or value == ():
                continue
            text = os.pathsep.join(map(str, value)) if isinstance(value, tuple) else str(value)
            shown[name] = f"{_redacted(text)} ({self.origin(name)})"
        return shown

    def sources_line(self) -> str:
        """:meth:`sources` on one line, for a client's repr."""
        used = " ".join(f"{name}={text}" for name, text in self.sources().items())
        return used or f"nothing configured ({self.origins.get('state_dir', 'no products database')})"


def _discover(env: Mapping[str, str], values: dict[str, Any], origins: dict[str, str]) -> None:
    """Fill the unset databases and log folders from the pipeline's state folder: ``DSA110_STATE_DIR`` when
    set, else ``/data/dsa110-contimg/state`` when no products database was given at all."""
    if env.get(ENV_STATE_DIR):
        state, how = _path(env[ENV_STATE_DIR]), f"{ENV_STATE_DIR}={env[ENV_STATE_DIR]}"
    elif "products_db" not in values:
        state, how = DEFAULT_STATE_DIR, f"the pipeline's default state folder {DEFAULT_STATE_DIR}"
    else:
        return
    try:
        found = {name: state / file for name, file in STATE_FILES.items() if (state / file).is_file()}
        logs = sorted(
            p
            for p in itertools.islice(state.iterdir(), MAX_LOG_FOLDERS * 16)
            if p.is_dir() and p.name.endswith("logs")
        )
    except OSError:
        found, logs = {}, []
    for name, path in found.items():
        if name not in values:
            values[name], origins[name] = path, f"found in {how}"
    if logs and "log_dirs" not in values:
        values["log_dirs"], origins["log_dirs"] = tuple(logs[:MAX_LOG_FOLDERS]), f"found in {how}"
    if "products_db" not in found:
        origins["state_dir"] = f"looked in {how}: no {STATE_FILES['products_db']} there"


def _redacted(text: str) -> str:
    """A database URL without its password."""
    parsed = urllib.parse.urlsplit(text)
    if parsed.password:
        return text.replace(f":{parsed.password}@", ":***@")
    return text


def _database(value: str | os.PathLike[str]) -> Path | str:
    """A SQLite file path, or a ``postgresql://`` URL kept as it is."""
    if isinstance(value, str) and value.startswith(("postgresql://", "postgres://")):
        return value
    return _path(value)


def _path(value: str | os.PathLike[str]) -> Path:
    text = os.fspath(value)
    if not text.strip():
        raise ValueError("empty path")
    return Path(text).expanduser()


def _paths(value: str | os.PathLike[str] | tuple[Any, ...] | list[Any]) -> tuple[Path, ...]:
    items = (
        value.split(os.pathsep)
        if isinstance(value, str)
        else [value]
        if isinstance(value, os.PathLike)
        else value
    )
    return tuple(_path(item) for item in items if os.fspath(item).strip())


def _path_map(value: str | Mapping[str, Any] | tuple[Any, ...] | list[Any]) -> tuple[tuple[str, Path], ...]:
    """``"/stage/dsa110-contimg=/mnt/stage,/data=/mnt/data"``, a mapping, or (from, to) pairs."""
    if isinstance(value, str):
        pairs: list[Any] = [part.partition("=")[::2] for part in value.split(",") if part.strip()]
        if any(not to for _, to in pairs):
            raise ValueError("expected FROM=TO pairs separated by commas")
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        pairs = list(value)
    out = []
    for pair in pairs:
        prefix, target = pair
        prefix = os.fspath(prefix).strip()
        if not prefix.startswith("/"):
            raise ValueError(f"{prefix!r}: a mapped prefix is an absolute path, as the pipeline records them")
        out.append((prefix, _path(target.strip() if isinstance(target, str) else target)))
    return tuple(out)


_UNITS = {"": 1, "b": 1, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "kb": 10**3, "mb": 10**6,
          "gb": 10**9, "tb": 10**12}  # fmt: skip


def _bytes(value: Any) -> int:
    """A size: a whole number of bytes, or text such as "512MiB", "2 GiB" or "1.5GB"."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip().lower().replace(" ", "")
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(number) :]
    if unit not in _UNITS or not number:
        raise ValueError("expected bytes, or a size such as 512MiB or 2GiB")
    amount = float(number) * _UNITS[unit]
    if not amount < 2**63:
        raise ValueError("too large")
    return int(amount)


def _redis_url(value: str) -> str:
    text = str(value).strip()
    if urllib.parse.urlsplit(text).scheme not in ("redis", "rediss", "unix"):
        raise ValueError("expected redis://host:port/db, rediss://... or unix:///path/to/socket")
    return text


def _queue_name(value: str) -> str:
    text = str(value).strip()
    if not text or len(text) > 200 or any(c.isspace() for c in text):
        raise ValueError("a queue name is 1 to 200 characters without spaces")
    return text


def _endpoint(name: str, url: str) -> Endpoint:
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("tcp", "http", "https") or not parsed.hostname:
        raise ValueError(f"{name}: {url!r} is not tcp://host:port or http(s)://host:port/path")
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)
    if port is None:
        raise ValueError(f"{name}: {url!r} needs a port")
    return Endpoint(name.strip(), parsed.scheme, parsed.hostname, port, parsed.path)


def _services(value: str | Mapping[str, str] | tuple[Any, ...] | list[Any]) -> tuple[Endpoint, ...]:
    """``"api=http://127.0.0.1:8000/health,db=tcp://127.0.0.1:5432"``, a mapping name -> URL, or Endpoints."""
    if isinstance(value, str):
        items: list[Any] = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, Mapping):
        items = [f"{k}={v}" for k, v in value.items()]
    else:
        items = list(value)
    out = []
    for item in items:
        if isinstance(item, Endpoint):
            out.append(item)
            continue
        name, sep, url = str(item).partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{item!r} is not name=URL")
        out.append(_endpoint(name, url))
    return tuple(out)


def _seconds(value: Any) -> float:
    """A duration setting: a number of seconds, a ``timedelta``, or text such as "90s" or "2min" (the one
    duration parser); "inf" and "nan" stay numbers, refused in ``__post_init__`` with the others."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return to_duration(value, "the duration").total_seconds()
    if isinstance(value, timedelta):
        return to_duration(value, "the duration").total_seconds()
    return value  # type: ignore[no-any-return]


def _flag(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


def _reject_unknown(overrides: Mapping[str, Any]) -> None:
    unknown = set(overrides) - set(_VARIABLES)
    if unknown:
        raise ValidationError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(_VARIABLES)}")


def _convert(name: str, raw: Any, origin: str) -> Any:
    try:
        return _CONVERTERS[name](raw)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{origin}: cannot use {raw!r}: {exc}") from exc


_VARIABLES: dict[str, str] = {
    "products_db": ENV_PRODUCTS_DB,
    "cal_registry_db": ENV_CAL_REGISTRY_DB,
    "log_dirs": ENV_LOG_DIRS,
    "query_timeout": ENV_QUERY_TIMEOUT,
    "pool_size": ENV_POOL_SIZE,
    "queue_db": ENV_QUEUE_DB,
    "cache_bytes": ENV_CACHE_BYTES,
    "cache_ttl": ENV_CACHE_TTL,
    "services": ENV_SERVICES,
    "connect_timeout": ENV_CONNECT_TIMEOUT,
    "allow_privileged": ENV_ALLOW_PRIVILEGED,
    "notes_db": ENV_NOTES_DB,
    "user": ENV_USER,
    "note_labels": ENV_NOTE_LABELS,
    "image_roots": ENV_IMAGE_ROOTS,
    "path_map": ENV_PATH_MAP,
    "redis_url": ENV_REDIS_URL,
    "queue_name": ENV_QUEUE_NAME,
    "memory_budget": ENV_MEMORY_BUDGET,
}

_CONVERTERS: dict[str, Any] = {
    "products_db": _database,
    "cal_registry_db": _database,
    "log_dirs": _paths,
    "query_timeout": _seconds,
    "pool_size": int,
    "queue_db": _database,
    "cache_bytes": int,
    "cache_ttl": _seconds,
    "services": _services,
    "connect_timeout": _seconds,
    "allow_privileged": _flag,
    "notes_db": _database,
    "user": check_author,
    "note_labels": check_labels,
    "image_roots": _paths,
    "path_map": _path_map,
    "redis_url": _redis_url,
    "queue_name": _queue_name,
    "memory_budget": _bytes,
}
