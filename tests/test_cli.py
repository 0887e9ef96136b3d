"""The contimg command line: output formats, exit codes, one-line errors, help on every command."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit import Client
from toolkit.cli import main
from toolkit.demo import DemoSite

COMMANDS = [
    ["demo"], ["lab"], ["stats"], ["images"], ["ms"], ["jobs"], ["sources"], ["cal"], ["logs"], ["logs", "tail"], ["logs", "grep"],
    ["notes"], ["notes", "list"], ["notes", "comment"], ["notes", "sign-off"], ["notes", "export"], ["notes", "import"],
]  # fmt: skip


@pytest.fixture
def site_env(site: DemoSite, monkeypatch: pytest.MonkeyPatch) -> DemoSite:
    for name, value in site.env.items():
        monkeypatch.setenv(name, value)
    return site


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_listings_in_every_format_match_the_client(site_env: DemoSite) -> None:
    with Client(**site_env.settings_kwargs()) as client:
        expected = client.images.list(type="pbcor", limit=5)
        jobs_failed = client.jobs.list(status="failed", limit=100)
    code, text = run_cli("images", "--type", "pbcor", "--limit", "5", "--format", "json")
    assert code == 0
    rows = json.loads(text)
    assert [r["id"] for r in rows] == expected["id"].tolist()
    assert rows[0]["qa_grade"] == expected["qa_grade"].iloc[0]
    code, text = run_cli(
        "jobs", "--status", "failed", "--limit", "100", "--format", "csv", "--columns", "run_id,status"
    )
    assert code == 0 and text.splitlines()[0] == "run_id,status"
    assert len(text.splitlines()) == len(jobs_failed) + 1
    code, text = run_cli("ms", "--stage", "calibrated", "--limit", "3", "--columns", "path,stage")
    assert code == 0 and text.count("calibrated") == 3
    code, text = run_cli("stats")
    assert code == 0 and "MS total" in text and "photometry rows" in text
    code, text = run_cli("cal", "--status", "active", "--format", "json")
    assert code == 0 and {r["status"] for r in json.loads(text)} == {"active"}
    code, text = run_cli("sources", "--limit", "2", "--format", "json")
    assert code == 0 and len(json.loads(text)) == 2
    # --search is list()'s search, on every listing command.
    with Client(**site_env.settings_kwargs()) as client:
        mosaics = client.images.list(search="MOSAIC")
        queue_rows = client.queue.list(search="T0", limit=100)
    code, text = run_cli("images", "--search", "MOSAIC", "--limit", "100", "--format", "json")
    assert code == 0 and [r["id"] for r in json.loads(text)] == mosaics["id"].tolist() and len(mosaics) > 0
    code, text = run_cli("queue", "--search", "T0", "--limit", "100", "--format", "json")
    assert code == 0 and len(json.loads(text)) == len(queue_rows) > 0
    code, text = run_cli("cal", "--search", "3c48", "--format", "json")
    assert code == 0 and {r["set_name"].split("_")[1] for r in json.loads(text)} == {"3C48"}


def test_logs_tail_and_grep(site_env: DemoSite) -> None:
    log = next(p for p in sorted(site_env.log_dir.iterdir()) if "Traceback" in p.read_text())
    run_id = log.stem
    code, text = run_cli("logs", "tail", run_id, "-n", "3")
    assert code == 0 and text.splitlines() == log.read_text().splitlines()[-3:]
    code, text = run_cli("logs", "grep", run_id, "ERROR", "-C", "1")
    assert code == 0
    matches = [line for line in text.splitlines() if line.split(":", 1)[0].isdigit() and ":" in line]
    assert matches and all("ERROR" in m for m in matches)


def test_toolkit_errors_exit_1_with_one_line(site_env: DemoSite, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli("images", "--since", "not-a-date")
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "ValidationError" in err and "Traceback" not in err
    code, _ = run_cli("images", "--columns", "id,nope")
    assert code == 1 and "nope" in capsys.readouterr().err
    code, _ = run_cli("logs", "tail", "../etc/passwd")
    assert code == 1 and "InvalidPathError" in capsys.readouterr().err


def test_demo_command_builds_a_site_and_prints_its_environment(tmp_path: Path) -> None:
    code, text = run_cli("demo", str(tmp_path / "site"))
    assert code == 0
    env = dict(line.removeprefix("export ").split("=", 1) for line in text.splitlines())
    assert Path(env["PIPELINE_PRODUCTS_DB"]).is_file() and Path(env["PIPELINE_LOG_DIRS"]).is_dir()
    code, text = run_cli("demo", str(tmp_path / "old"), "--now", "2025-10-06T18:00")
    env = dict(line.removeprefix("export ").split("=", 1) for line in text.splitlines())
    with Client(products_db=env["PIPELINE_PRODUCTS_DB"]) as client:
        night = client.last_night()
    assert code == 0 and night.date.isoformat() == "2025-10-06" and night.newest.hour < 18
    assert run_cli("demo", str(tmp_path / "bad"), "--now", "soon")[0] == 1


def _console(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "toolkit", *argv], capture_output=True, text=True, env=full_env, timeout=60
    )


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_on_every_command(command: list[str]) -> None:
    result = _console(*command, "--help")
    assert result.returncode == 0 and "usage: contimg" in result.stdout


def test_exit_codes_from_a_real_process(tmp_path: Path) -> None:
    assert _console("no-such-command").returncode == 2
    assert _console("images", "--limit", "many").returncode == 2
    missing = _console("stats", env={"PIPELINE_PRODUCTS_DB": str(tmp_path / "nope.sqlite3")})
    assert missing.returncode == 1
    assert "DatabaseConnectionError" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "nope.sqlite3").exists()
    debug = _console("--debug", "stats", env={"PIPELINE_PRODUCTS_DB": str(tmp_path / "nope.sqlite3")})
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_lab_builds_the_site_and_serves_jupyterlab(tmp_path: Path) -> None:
    """The README's main job: demo site + JupyterLab on notebooks/, printing its URL."""
    import re
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit", "lab", str(tmp_path / "site"), "--port", str(port)],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        url = None
        deadline = time.monotonic() + 90
        assert proc.stdout is not None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            found = re.search(rf"(http://127\.0\.0\.1:{port}/lab\?token=\w+)", line)
            url = found.group(1) if found else None
        assert url, "JupyterLab printed no URL"
        assert (tmp_path / "site" / "products.sqlite3").is_file()
        body, status = b"", 0
        for _ in range(60):  # the URL can be logged a moment before requests are served
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    body, status = response.read(), response.status
                break
            except OSError:
                time.sleep(0.5)
        assert status == 200 and b"JupyterLab" in body
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # The PID we started is JupyterLab itself: stopping it leaves no server behind.
    listening = subprocess.run(["pgrep", "-f", f"--port={port}"], capture_output=True, text=True)
    assert listening.stdout.strip() == ""


def test_notes_commands_write_list_and_move_annotations(
    site_env: DemoSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONTIMG_NOTES_DB", str(tmp_path / "notes.sqlite"))
    monkeypatch.setenv("CONTIMG_USER", "carol")
    with Client(**site_env.settings_kwargs()) as client:
        image = client.images.list(limit=1)
    image_id, path = str(image["id"][0]), str(image["path"][0])
    code, text = run_cli("notes", "comment", "image", image_id, "sidelobes at the edge")
    assert code == 0 and text.startswith(f"recorded comment on image {path}")
    assert run_cli("notes", "tag", "image", path, "rfi", "edge")[0] == 0
    assert run_cli("notes", "tag", "image", image_id, "edge", "--remove")[0] == 0
    code, text = run_cli("notes", "sign-off", "image", image_id, "fail", "--reason", "beam is wrong")
    assert code == 0 and "recorded sign_off" in text
    assert run_cli("notes", "sign-off", "image", image_id, "--clear", "--reason", "re-imaged")[0] == 0
    assert run_cli("notes", "classify", "source", site_env.transient_source, "transient")[0] == 0

    code, text = run_cli("notes", "list", "--target", f"image:{image_id}", "--format", "json")
    current = json.loads(text)
    assert code == 0 and sorted(r["kind"] for r in current) == ["comment", "tag"]
    assert {r["author"] for r in current} == {"carol"}
    assert [r["tag"] for r in current if r["kind"] == "tag"] == ["rfi"]
    code, text = run_cli("notes", "history", "image", path, "--format", "csv", "--columns", "action,grade")
    assert code == 0 and text.splitlines() == [
        "action,grade", "comment,", "tag,", "tag,", "untag,", "sign_off,fail", "clear_sign_off,",
    ]  # fmt: skip
    code, text = run_cli("images", "--tag", "rfi", "--format", "json", "--columns", "path,tags")
    assert code == 0 and json.loads(text) == [{"path": path, "tags": "rfi"}]

    exported = tmp_path / "night.jsonl"
    code, text = run_cli("notes", "export", str(exported))
    assert code == 0 and text == f"wrote 7 events to {exported}\n"
    assert len(exported.read_text().splitlines()) == 7
    monkeypatch.setenv("CONTIMG_NOTES_DB", str(tmp_path / "elsewhere.sqlite"))
    assert run_cli("notes", "import", str(exported))[1].startswith("read 7 events: 7 added, 0 already here")
    assert run_cli("notes", "import", str(exported))[1].startswith("read 7 events: 0 added, 7 already here")

    capsys.readouterr()
    for argv, error in (
        (("notes", "sign-off", "image", image_id, "--reason", "no grade"), "give a grade"),
        (
            ("notes", "sign-off", "image", image_id, "good", "--clear", "--reason", "x"),
            "--clear takes no grade",
        ),
        (("notes", "list", "--target", "galaxy:1"), "--target is KIND:ID"),
        (("notes", "comment", "image", "99999999", "x"), "RecordNotFoundError"),
        (("notes", "tag", "image", image_id, "has space"), "no whitespace"),
        (("notes", "classify", "source", site_env.transient_source, "alien"), "unknown label"),
        (("notes", "export", str(site_env.products_db)), "ValidationError"),
    ):
        code, _ = run_cli(*argv)
        err = capsys.readouterr().err
        assert code == 1 and error in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    imported = json.loads(run_cli("notes", "list", "--format", "json")[1])  # the current state came along
    assert sorted(r["kind"] for r in imported) == ["comment", "label", "tag"]
