"""Packaging and the demo generator: the declared dependencies agree, the demo is deterministic."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import tomllib
from contextlib import closing
from pathlib import Path

import yaml

import toolkit
from tests.conftest import NOW
from toolkit.client import area_names
from toolkit.demo import SMALL, build_demo_site
from toolkit.schema import OLDER
from toolkit.vocab import MS_STAGES

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_and_pyproject_name_the_same_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)} - {"python", "pip"}
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    renamed = {"redis": "redis-py"}  # conda-forge's name for PyPI's redis
    assert {renamed.get(_name(d), _name(d)) for d in project["dependencies"]} == conda
    assert "-e ." in pip_section
    assert "conda-forge" in env["channels"]


def test_package_ships_its_types_and_public_names() -> None:
    assert (Path(toolkit.__file__).parent / "py.typed").exists()
    for name in toolkit.__all__:
        assert hasattr(toolkit, name), name


def _dump(db: Path) -> str:
    with closing(sqlite3.connect(db)) as conn:
        return hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()


def test_demo_is_deterministic_and_has_what_real_data_has(tmp_path: Path) -> None:
    a = build_demo_site(tmp_path / "a", now=NOW)
    b = build_demo_site(tmp_path / "b", now=NOW)
    assert _dump(a.products_db) == _dump(b.products_db)
    assert sorted(p.name for p in a.log_dir.iterdir()) == sorted(p.name for p in b.log_dir.iterdir())
    with closing(sqlite3.connect(a.products_db)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM ms_index").fetchone()[0] == SMALL.n_ms
        assert {r[0] for r in conn.execute("SELECT DISTINCT stage FROM ms_index")} == set(MS_STAGES)
        assert {r[0] for r in conn.execute("SELECT DISTINCT status FROM jobs")} >= {
            "pending", "running", "completed", "failed", "cancelled"
        }  # fmt: skip
        assert conn.execute("SELECT COUNT(DISTINCT type) FROM images").fetchone()[0] >= 3
        assert conn.execute("SELECT COUNT(*) FROM photometry WHERE flux_jy IS NULL").fetchone()[0] > 0
        assert conn.execute("SELECT COUNT(*) FROM images WHERE noise_jy IS NULL").fetchone()[0] > 0
        assert conn.execute("SELECT COUNT(*) FROM ms_index WHERE status = 'failed'").fetchone()[0] > 0
        assert conn.execute("SELECT COUNT(*) FROM transient_candidates").fetchone()[0] == 0
        logs_inline = conn.execute("SELECT COUNT(*) FROM jobs WHERE logs IS NOT NULL").fetchone()[0]
        assert logs_inline > 0
        # the transient is faint early and bright late
        early, late = conn.execute(
            "SELECT AVG(CASE WHEN mjd < (SELECT AVG(mjd) FROM photometry) THEN flux_jy END), "
            "AVG(CASE WHEN mjd >= (SELECT AVG(mjd) FROM photometry) THEN flux_jy END) "
            "FROM photometry WHERE source_id = ?",
            (a.transient_source,),
        ).fetchone()
        assert late > 5 * abs(early)
    with closing(sqlite3.connect(a.cal_registry_db or "")) as conn:
        assert {r[0] for r in conn.execute("SELECT DISTINCT status FROM caltables")} == {
            "active",
            "retired",
            "failed",
        }
    failed_log = next(p for p in a.log_dir.iterdir() if "Traceback" in p.read_text())
    assert "ERROR" in failed_log.read_text()


def test_older_schema_variant(tmp_path: Path) -> None:
    site = build_demo_site(tmp_path, schema="older", now=NOW)
    with closing(sqlite3.connect(site.products_db)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "jobs" not in tables
        for table in ("images", "ms_index", "photometry"):
            columns = tuple(r[1] for r in conn.execute(f"PRAGMA table_info({table})"))
            assert columns == OLDER[table]


def test_every_public_type_is_exported_and_the_list_is_sorted() -> None:
    """Every record, result and warning a public call returns or raises can be imported from ``toolkit``."""
    import dataclasses
    import inspect

    import toolkit
    from toolkit import errors

    assert toolkit.__all__ == sorted(toolkit.__all__)
    assert all(hasattr(toolkit, name) for name in toolkit.__all__)
    returned: set[str] = set()
    client = toolkit.AsyncClient(products_db="unused.sqlite3")
    areas = [client] + [getattr(client, a) for a in area_names(client)]
    for area in areas:
        for name, method in inspect.getmembers(area, callable):
            if name.startswith("_"):
                continue
            hint = str(inspect.signature(method).return_annotation)
            returned.update(
                w
                for w in re.findall(r"[A-Z][A-Za-z]+", hint)
                # pandas', astropy's (HDUList, Cutout2D) and the standard library's types are theirs to export
                if w not in {"DataFrame", "Any", "None", "AsyncIterator", "Path", "HDUList", "Cutout"}
            )
    returned.add(type(client.cache.stats()).__name__)
    errors_tree = {
        n for n, c in vars(errors).items() if isinstance(c, type) and issubclass(c, errors.ToolkitError)
    }
    missing = sorted((returned | errors_tree) - set(toolkit.__all__))
    assert not missing, f"public types not exported from toolkit: {missing}"
    assert dataclasses.is_dataclass(toolkit.EtaVResult)
