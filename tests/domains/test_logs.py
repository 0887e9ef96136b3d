"""Job logs on real files: find, tail/head, follow, grep, frame, summary, and path safety."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from toolkit import (
    AsyncClient,
    FileNotAccessibleError,
    InvalidPathError,
    RecordNotFoundError,
    ValidationError,
)
from toolkit.demo import DemoSite
from toolkit.logparse import CUT_MARKER, MAX_LINE, parse, records_frame


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    return folder


@pytest.fixture
async def logclient(site: DemoSite, logdir: Path) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(products_db=site.products_db, log_dirs=[logdir, site.log_dir]) as client:
        yield client


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


async def test_find_tail_head_on_demo_logs(site: DemoSite) -> None:
    async with AsyncClient(**site.settings_kwargs()) as client:
        failed = await client.jobs.list(status="failed")
        run_id = next(r for r in failed["run_id"] if (site.log_dir / f"{r}.log").exists())
        path = await client.logs.find(run_id)
        assert path == (site.log_dir / f"{run_id}.log").resolve()
        lines = path.read_text().splitlines()  # type: ignore[union-attr]
        tail = await client.logs.tail(run_id, n=3)
        assert tail.lines == lines[-3:] and tail.size == path.stat().st_size  # type: ignore[union-attr]
        assert (await client.logs.head(run_id, n=2)).lines == lines[:2]
        assert (await client.logs.tail(run_id, n=10_000)).lines == lines
        summary = await client.logs.summary(run_id)
        assert summary.counts["ERROR"] >= 1
        assert summary.first_error is not None and "Traceback" in summary.first_error
        assert "RuntimeError" in summary.first_error
        assert summary.first_timestamp is not None and summary.first_timestamp <= summary.last_timestamp  # type: ignore[operator]


async def test_inline_logs_from_the_jobs_table(site: DemoSite) -> None:
    async with AsyncClient(**site.settings_kwargs()) as client:
        rows = await client.sql("SELECT run_id, logs FROM jobs WHERE logs IS NOT NULL LIMIT 1")
        run_id, text = str(rows["run_id"][0]), str(rows["logs"][0])
        assert await client.logs.find(run_id) == text
        tail = await client.logs.tail(run_id, n=2)
        assert tail.source == "inline" and tail.lines == text.splitlines()[-2:]
        assert len(await client.logs.grep(run_id, "INFO")) >= 1
        with pytest.raises(RecordNotFoundError):
            await client.logs.find("job-1999-01-01-000000")


async def test_tail_skips_half_written_line_and_handles_crlf_and_bad_utf8(
    logclient: AsyncClient, logdir: Path
) -> None:
    write(logdir / "a.log", b"one\r\ntwo \xff\xfe\r\nthree\nfour-still-being-writ")
    tail = await logclient.logs.tail("a", n=10)
    assert tail.lines == ["one", "two \ufffd\ufffd", "three"]
    assert (await logclient.logs.head("a", n=10)).lines == ["one", "two \ufffd\ufffd", "three"]
    write(logdir / "empty.log", b"")
    assert (await logclient.logs.tail("empty")).lines == []


async def test_tail_cost_does_not_depend_on_file_size_and_long_lines_are_cut(
    logclient: AsyncClient, logdir: Path
) -> None:
    body = b"".join(b"line %d\n" % i for i in range(200_000))
    write(logdir / "big.log", body)
    tail = await logclient.logs.tail("big", n=5)
    assert tail.lines == [f"line {i}" for i in range(199_995, 200_000)]
    write(logdir / "long.log", b"start\n" + b"x" * (MAX_LINE + 10) + b"\nend\n")
    head = await logclient.logs.head("long", n=3)
    assert head.lines[0] == "start" and head.lines[1].endswith(CUT_MARKER) and head.lines[2] == "end"
    assert len(head.lines[1]) == MAX_LINE + len(CUT_MARKER)


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/b", "/etc/passwd", "", "..", "a\x00b", "x\\y"])
async def test_unsafe_run_ids_are_refused(logclient: AsyncClient, bad: str) -> None:
    with pytest.raises(InvalidPathError):
        await logclient.logs.tail(bad)


async def test_symlink_out_of_the_log_dirs_is_never_opened(
    logclient: AsyncClient, logdir: Path, tmp_path: Path
) -> None:
    secret = write(tmp_path / "secret.txt", "do not read\n")
    os.symlink(secret, logdir / "sneaky.log")
    before = secret.stat().st_atime_ns
    with pytest.raises(FileNotAccessibleError, match="outside"):
        await logclient.logs.tail("sneaky")
    with pytest.raises(FileNotAccessibleError):
        await logclient.logs.grep("sneaky", "read")
    assert secret.stat().st_atime_ns == before


async def test_grep_regex_plain_context_and_limits(logclient: AsyncClient, logdir: Path) -> None:
    lines = [f"{i:05d} {'ERROR boom' if i % 1000 == 7 else 'INFO fine'} a.b" for i in range(30_000)]
    write(logdir / "g.log", "\n".join(lines) + "\n")
    hits = await logclient.logs.grep("g", r"ERROR \w+")
    assert hits["line_number"].tolist() == [i + 1 for i in range(30_000) if i % 1000 == 7]
    assert hits["match"].all()
    ctx = await logclient.logs.grep("g", "ERROR", context=2, max_matches=2)
    assert ctx["line_number"].tolist() == [6, 7, 8, 9, 10, 1006, 1007, 1008, 1009, 1010]
    assert ctx["match"].tolist() == [False, False, True, False, False] * 2
    assert ctx["line"].iloc[2] == lines[7]
    assert len(await logclient.logs.grep("g", "error", ignore_case=True)) == 30
    assert len(await logclient.logs.grep("g", "a.b", regex=False)) == 30_000
    assert (await logclient.logs.grep("g", "nothing-like-this")).empty
    with pytest.raises(ValidationError, match="regular expression"):
        await logclient.logs.grep("g", "([unclosed")


async def test_grep_context_across_block_boundaries(
    logclient: AsyncClient, logdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import toolkit.domains.logs as logs_module

    monkeypatch.setattr(logs_module, "GREP_BLOCK", 64)
    lines = [f"line {i:03d} {'HIT' if i in (5, 6, 40) else ''}" for i in range(60)]
    write(logdir / "b.log", "\n".join(lines))  # no newline at the end
    got = await logclient.logs.grep("b", "HIT", context=3)
    expected = sorted({j for i in (5, 6, 40) for j in range(i - 3, i + 4)})
    assert got["line_number"].tolist() == [j + 1 for j in expected]
    assert got["line"].tolist() == [lines[j] for j in expected]
    assert got.loc[got["match"], "line_number"].tolist() == [6, 7, 41]
    last = await logclient.logs.grep("b", "line 059")
    assert last["line"].tolist() == [lines[59]]


def test_parse_folds_tracebacks_and_keeps_unknown_lines() -> None:
    lines = [
        "preamble without a timestamp",
        "2025-11-30 12:00:00,123 [INFO] starting",
        "2025-11-30 12:00:01,000 - dsa110_contimg.imaging - ERROR - failed",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "ValueError: bad",
        "2025-11-30 12:00:02,500 - dsa110_contimg.imaging - WARNING - retry",
    ]
    frame = records_frame(parse(lines))
    assert frame["line_number"].tolist() == [1, 2, 3, 7]
    assert frame["level"].isna().tolist() == [True, False, False, False]
    assert frame["logger"].tolist()[2] == "dsa110_contimg.imaging"
    assert frame["message"].iloc[2].endswith("ValueError: bad") and "Traceback" in frame["message"].iloc[2]
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
    assert frame["timestamp"].iloc[1].microsecond == 123_000


async def test_follow_sees_appends_rotation_and_truncation_and_waits_for_the_file(
    logclient: AsyncClient, logdir: Path
) -> None:
    path = logdir / "f.log"
    received: list[str] = []

    async def consume() -> None:
        async for line in logclient.logs.follow("f", poll_interval=0.02):
            received.append(line)

    async def wait_for(count: int) -> None:
        for _ in range(300):
            if len(received) >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"only {received}")

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)  # the file does not exist yet
    write(path, "first\nsecond\n")
    await wait_for(2)
    with path.open("ab") as handle:
        handle.write(b"third, half")
        handle.flush()
        await asyncio.sleep(0.1)
        assert received == ["first", "second"], "half a line is never yielded"
        handle.write(b" done\n")
    await wait_for(3)
    assert received[2] == "third, half done"
    rotated = logdir / "f.log.1"
    path.rename(rotated)
    write(path, "after rotation\n")
    await wait_for(4)
    write(path, "")  # truncated
    await asyncio.sleep(0.1)
    write(path, "after truncation\n")
    await wait_for(5)
    assert received[3:] == ["after rotation", "after truncation"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
