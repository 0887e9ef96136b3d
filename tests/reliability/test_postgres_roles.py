"""PostgreSQL with the least privilege: privileged roles are refused, and nothing a reader types escapes."""

from __future__ import annotations

import asyncio
import os
import time
import warnings

import asyncpg
import pytest

from toolkit import (
    AsyncClient,
    ClientClosedError,
    ConfigurationError,
    DatabaseConnectionError,
    DatabaseQueryError,
    PrivilegedRoleWarning,
    ReadOnlyError,
)

from ..conftest import PostgresSite


async def test_a_superuser_is_refused_unless_allowed_and_then_warned_once(
    postgres_site: PostgresSite,
) -> None:
    with pytest.raises(ConfigurationError, match="superuser") as refused:
        await AsyncClient(products_db=postgres_site.admin_url).open()
    assert "pg_read_all_data" in str(refused.value)  # says how to make a read-only role
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            async with AsyncClient(products_db=postgres_site.admin_url, allow_privileged=True) as client:
                assert len(await client.images.list(limit=3)) == 3
    assert [type(w.message) for w in caught] == [PrivilegedRoleWarning]


async def test_a_role_that_may_write_the_tables_is_refused(postgres_site: PostgresSite) -> None:
    admin = await asyncpg.connect(postgres_site.admin_url)
    role = "contimg_writer_probe"
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'probe'")
        await admin.execute(f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {role}")
        url = postgres_site.admin_url.replace(
            postgres_site.admin_url.split("@")[0], f"postgresql://{role}:probe"
        )
        with pytest.raises(ConfigurationError, match="may write tables"):
            await AsyncClient(products_db=url).open()
    finally:
        await admin.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


ESCAPES = [
    "COPY (SELECT 1) TO PROGRAM 'touch /tmp/contimg-pwned'",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT lo_import('/etc/passwd')",
    "ALTER SYSTEM SET work_mem = '1GB'",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT set_config('statement_timeout', '0', false)",
    "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
    "BEGIN",
    "WITH gone AS (DELETE FROM images RETURNING id) SELECT count(*) FROM gone",
]


@pytest.mark.parametrize("statement", ESCAPES)
async def test_nothing_a_reader_types_escapes_its_read(postgres_site: PostgresSite, statement: str) -> None:
    async with AsyncClient(**postgres_site.settings_kwargs(), pool_size=1) as client:
        before = await client.sql("SELECT count(*) AS n FROM images")
        with pytest.raises((ReadOnlyError, DatabaseQueryError)):
            await client.sql(statement)
        # The one pooled connection is still read-only, still bounded, and the data is unchanged.
        with pytest.raises(ReadOnlyError):
            await client.sql("WITH gone AS (DELETE FROM images RETURNING id) SELECT count(*) FROM gone")
        settings = await client.sql(
            "SELECT current_setting('default_transaction_read_only') AS ro, "
            "current_setting('statement_timeout') AS timeout"
        )
        assert settings["ro"].iloc[0] == "on" and settings["timeout"].iloc[0] != "0"
        assert (await client.sql("SELECT count(*) AS n FROM images")).equals(before)
    assert not await asyncio.to_thread(os.path.exists, "/tmp/contimg-pwned")
    admin = await asyncpg.connect(postgres_site.admin_url)
    try:
        assert await admin.fetchval("SELECT count(*) FROM pg_largeobject_metadata") == 0
        assert await admin.fetchval("SELECT current_setting('work_mem')") != "1GB"
    finally:
        await admin.close()


async def test_close_interrupts_a_long_postgresql_query_within_a_second(postgres_site: PostgresSite) -> None:
    client = AsyncClient(**postgres_site.settings_kwargs(), query_timeout=60)
    await client.open()
    running = asyncio.create_task(client.sql("SELECT pg_sleep(30)"))
    backend = await client._connections.products()  # the bulk (ADBC) path, with a query as slow
    bulk = asyncio.create_task(backend.fetch_frame("SELECT pg_sleep(30) AS slept", [], {}))
    await asyncio.sleep(0.5)
    started = time.perf_counter()
    await client.aclose()
    assert time.perf_counter() - started < 1.5
    with pytest.raises((ClientClosedError, DatabaseConnectionError)):
        await running
    with pytest.raises(ClientClosedError):
        await bulk
