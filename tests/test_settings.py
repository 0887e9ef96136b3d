"""Settings: arguments > environment > defaults, with origins that errors can name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from toolkit import Settings, ValidationError
from toolkit.demo import DemoSite


def test_arguments_win_over_environment() -> None:
    env = {
        "PIPELINE_PRODUCTS_DB": "/env/products.sqlite3",
        "PIPELINE_LOG_DIRS": os.pathsep.join(["/a", "/b"]),
    }
    from_env = Settings.from_env(env)
    assert from_env.products_db == Path("/env/products.sqlite3")
    assert from_env.log_dirs == (Path("/a"), Path("/b"))
    assert from_env.origin("products_db") == "environment variable PIPELINE_PRODUCTS_DB"
    explicit = Settings.from_env(env, products_db="/arg/p.sqlite3", log_dirs=["/c"], query_timeout=2)
    assert explicit.products_db == Path("/arg/p.sqlite3") and explicit.log_dirs == (Path("/c"),)
    assert explicit.origin("products_db") == "argument products_db"
    assert explicit.query_timeout == 2.0 and explicit.cal_registry_db is None
    again = explicit.with_overrides(pool_size=2)
    assert again.pool_size == 2 and again.products_db == explicit.products_db


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"query_timeout": 0}, "query_timeout"),
        ({"query_timeout": "soon"}, "query_timeout"),
        ({"pool_size": 0}, "pool_size"),
        ({"products_db": "  "}, "products_db"),
        ({"prodcts_db": "/x"}, "unknown setting"),
    ],
)
def test_bad_settings(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings.from_env({}, **overrides)


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ValidationError, match="CONTIMG_POOL_SIZE"):
        Settings.from_env({"CONTIMG_POOL_SIZE": "many"})


def test_duration_settings_take_seconds_text_and_timedeltas() -> None:
    from datetime import timedelta

    from toolkit import Settings

    assert Settings.from_env({}, products_db="x", query_timeout=timedelta(seconds=5)).query_timeout == 5.0
    assert Settings.from_env({"CONTIMG_QUERY_TIMEOUT": "2min"}, products_db="x").query_timeout == 120.0
    assert Settings.from_env({"CONTIMG_CACHE_TTL": "90"}, products_db="x").cache_ttl == 90.0
    for bad in ("soon", "inf", "0", "-3"):
        with pytest.raises(ValidationError):
            Settings.from_env({"CONTIMG_QUERY_TIMEOUT": bad}, products_db="x")


def test_the_pipeline_state_folder_is_found_and_named(site: DemoSite, tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    from toolkit import Client, ConfigurationError

    state = tmp_path / "state"
    (state / "job_logs").mkdir(parents=True)
    (state / "other").mkdir()
    shutil.copy(site.products_db, state / "products.sqlite3")
    assert site.cal_registry_db is not None and site.queue_db is not None
    shutil.copy(site.cal_registry_db, state / "cal_registry.sqlite3")
    shutil.copy(site.queue_db, state / "ingest.sqlite3")
    found = Settings.from_env({"DSA110_STATE_DIR": str(state)})
    assert found.products_db == state / "products.sqlite3"
    assert (
        found.cal_registry_db == state / "cal_registry.sqlite3" and found.queue_db == state / "ingest.sqlite3"
    )
    assert found.log_dirs == (state / "job_logs",)
    assert found.origin("products_db") == f"found in DSA110_STATE_DIR={state}"
    # What is configured wins; the state folder fills in the rest.
    mixed = Settings.from_env({"DSA110_STATE_DIR": str(state), "PIPELINE_PRODUCTS_DB": str(site.products_db)})
    assert mixed.products_db == site.products_db and mixed.queue_db == state / "ingest.sqlite3"
    with Client(settings=found) as client:
        assert client.stats().images_total > 0
        assert f"products_db={state / 'products.sqlite3'} (found in DSA110_STATE_DIR=" in repr(client)
    # Nothing there: the error names the variables and where it looked.
    empty = Settings.from_env({"DSA110_STATE_DIR": str(tmp_path / "nowhere")})
    assert empty.products_db is None
    with pytest.raises(
        ConfigurationError, match=r"PIPELINE_PRODUCTS_DB.*DSA110_STATE_DIR.*looked in DSA110_STATE_DIR="
    ):
        empty.require_products_db()
    # The CLI says which files it read, on stderr.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "CONTIMG_"))}
    done = subprocess.run(
        [sys.executable, "-m", "toolkit", "stats", "--verbose", "--format", "json"],
        env={**env, "DSA110_STATE_DIR": str(state)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"products_db: {state / 'products.sqlite3'} (found in DSA110_STATE_DIR=" in done.stderr
    assert f"log_dirs: {state / 'job_logs'}" in done.stderr and done.stdout.startswith("[")
