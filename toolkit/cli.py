"""``contimg``: the command line. Thin: parse, call the blocking client, format.

Exit codes: 0 success, 1 a toolkit error (one line on stderr, or with ``--format json`` one JSON object
``{"error": {"code": ..., "type": ..., "message": ...}}``; ``--debug`` shows the traceback), 2 a usage error
(argparse's own).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import pandas as pd

from .arguments import check_count
from .domains.cal import CalFilters
from .domains.images import ImageFilters
from .domains.jobs import JobFilters
from .domains.ms import MSFilters
from .domains.sources import SourceFilters
from .errors import ConfigurationError, ToolkitError, ValidationError
from .notes.model import NoteEvent
from .rqdata import STATUS_KEYS
from .sync import Client
from .vocab import CAL_STATUSES, IMAGE_TYPES, JOB_STATUSES, MS_STAGES, MS_STATUSES, QUEUE_STATES, TABLE_TYPES

Handler = Callable[[Client, argparse.Namespace, TextIO], None]


def _emit(frame: pd.DataFrame, fmt: str, out: TextIO) -> None:
    if fmt == "csv":
        frame.to_csv(out, index=False)
    elif fmt == "json":
        out.write(frame.to_json(orient="records", date_format="iso") + "\n")
    else:
        out.write((frame.to_string(index=False, max_colwidth=60) if len(frame) else "(no rows)") + "\n")


def _list(area: str, names: Sequence[str]) -> Handler:
    def handler(client: Client, ns: argparse.Namespace, out: TextIO) -> None:
        kwargs = {name: getattr(ns, name) for name in names if getattr(ns, name) is not None}
        frame = getattr(client, area).list(**kwargs)
        _emit(_pick_columns(frame, ns.columns), ns.format, out)

    return handler


def _pick_columns(frame: pd.DataFrame, columns: str | None) -> pd.DataFrame:
    if not columns:
        return frame
    wanted = [c.strip() for c in columns.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in frame.columns]
    if unknown:
        raise ValidationError(f"unknown column(s) {unknown}; columns: {', '.join(map(str, frame.columns))}")
    return frame[wanted]


def _stats(client: Client, ns: argparse.Namespace, out: TextIO) -> None:
    if ns.verbose:  # on stderr: the counts on stdout stay machine-readable
        for name, text in client.settings.sources().items():
            print(f"{name}: {text}", file=sys.stderr)
    stats = client.stats()
    rows = [("MS total", stats.ms_total)]
    rows += [(f"  MS {stage}", n) for stage, n in sorted(stats.ms_by_stage.items())]
    rows += [("images", stats.images_total), ("photometry rows", stats.photometry_rows)]
    rows += [("sources", stats.unique_sources), ("jobs total", stats.jobs_total)]
    rows += [(f"  jobs {status}", n) for status, n in sorted(stats.jobs_by_status.items())]
    rows += [("cal tables", stats.cal_tables_total)]
    _emit(_pick_columns(pd.DataFrame(rows, columns=["what", "count"]), ns.columns), ns.format, out)


def _logs_tail(client: Client, ns: argparse.Namespace, out: TextIO) -> None:
    if ns.follow:
        for line in client.logs.tail(ns.run_id, n=ns.n).lines:
            out.write(line + "\n")
        out.flush()
        for line in client.logs.follow(ns.run_id, from_end=True):
            out.write(line + "\n")
            out.flush()
        return
    for line in client.logs.tail(ns.run_id, n=ns.n).lines:
        out.write(line + "\n")


def _logs_read(client: Client, ns: argparse.Namespace, out: TextIO) -> None:
    for line in client.logs.read(ns.run_id, max_bytes=ns.max_bytes).lines:
        out.write(line + "\n")


def _logs_grep(client: Client, ns: argparse.Namespace, out: TextIO) -> None:
    frame = client.logs.grep(
        ns.run_id, ns.pattern, context=ns.context, ignore_case=ns.ignore_case, regex=not ns.fixed_strings
    )
    if ns.format == "table":
        for row in frame.itertuples():
            out.write(f"{row.line_number}{':' if row.match else '-'}{row.line}\n")
    else:
        _emit(frame, ns.format, out)


def _report(client: Client, ns: argparse.Namespace, out: TextIO) -> None:
    from tqdm import tqdm

    from .qa.report import MARKDOWN_SUFFIXES, check_target

    target = check_target(ns.out)
    with tqdm(total=4, desc="QA report", unit="step", file=sys.stderr) as bar:

        def progress(step: str, done: int, total: int) -> None:
            bar.set_postfix_str(step)
            bar.n = done
            bar.refresh()

        report = client.qa.report(
            since=ns.since, until=ns.until, rules=ns.rules, as_of=ns.as_of, progress=progress
        )
        if target.suffix.lower() in MARKDOWN_SUFFIXES:
            report.to_markdown(target)
        else:
            report.to_html(target)
    totals = ", ".join(f"{sum(c.values())} {name}" for name, c in report.totals.items())
    out.write(f"wrote {target} ({totals}{'; empty range' if report.empty else ''})\n")


def _queue(client: Client, ns: argparse.Namespace, out: TextIO) -> None:
    if ns.stuck:
        frame = client.queue.stuck(ns.stuck)
    else:
        frame = client.queue.list(state=ns.state, search=ns.search, limit=ns.limit)
    _emit(_pick_columns(frame, ns.columns), ns.format, out)


def _export(client: Client, ns: argparse.Namespace, out: TextIO) -> None:
    common: dict[str, Any] = {
        "format": ns.export_format, "batch_rows": ns.batch_rows, "overwrite": ns.overwrite,
        "progress": not ns.quiet,
    }  # fmt: skip
    if ns.what == "photometry":
        columns = [c.strip() for c in ns.columns.split(",") if c.strip()] if ns.columns else None
        result = client.sources.export(
            ns.file, source_ids=ns.source_id, start_mjd=ns.start_mjd, end_mjd=ns.end_mjd, columns=columns,
            **common,
        )  # fmt: skip
    else:
        names = [n for n in _FILTERS[ns.what] if n not in ("limit", "offset")]
        filters = {name: getattr(ns, name) for name in names if getattr(ns, name, None) is not None}
        result = getattr(client, ns.what).export(ns.file, **common, **filters)
    out.write(
        f"wrote {result.rows:,} rows ({result.bytes:,} bytes) to {result.path}; manifest {result.manifest}\n"
    )


def _jobs_queue(client: Client, ns: argparse.Namespace, out: TextIO) -> None:
    if ns.job is not None:
        job = client.jobs_queue.get(ns.job)
        fields = {k: v for k, v in job.to_dict().items() if k not in ("traceback", "result_pickle")}
        if ns.format == "json":
            out.write(json.dumps({**fields, "traceback": job.traceback}, default=str) + "\n")
            return
        for name, value in fields.items():
            out.write(f"{name:>12}: {value}\n")
        if job.traceback:
            out.write(job.traceback.rstrip("\n") + "\n")
        return
    if ns.stats:
        stats = client.jobs_queue.stats()
        rows = [*stats.counts.items(), ("workers", stats.workers)]
        _emit(_pick_columns(pd.DataFrame(rows, columns=["what", "count"]), ns.columns), ns.format, out)
        return
    frame = client.jobs_queue.list(status=ns.status, limit=ns.limit)
    _emit(_pick_columns(frame, ns.columns), ns.format, out)


def _services(client: Client, ns: argparse.Namespace, out: TextIO) -> None:
    frame = client.services.status(check_timeout=ns.timeout)
    _emit(_pick_columns(frame, ns.columns), ns.format, out)


# ------------------------------------------------------------------------------------------ notes
_TARGET_KINDS = ("image", "ms", "source", "job", "cal")


def _notes_parser(sub: Any) -> None:
    notes = sub.add_parser(
        "notes", help="comments, tags, sign-offs and labels (the toolkit's notes database)"
    )
    actions = notes.add_subparsers(dest="notes_command", required=True, metavar="ACTION")

    def targeted(name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, help=help_text)
        p.add_argument("kind", choices=_TARGET_KINDS)
        p.add_argument("target", help="image id or path, MS path, source id, run id or cal table path")
        return p

    listing = actions.add_parser("list", help="current annotations, newest first")
    listing.add_argument("--kind", help="comment, tag, sign_off or label; or image, ms, source, job or cal")
    listing.add_argument("--target", metavar="KIND:ID", help="one target, e.g. image:12 or ms:/path/x.ms")
    listing.add_argument("--tag")
    listing.add_argument("--author")
    listing.add_argument("--since", help="ISO-8601 date/time")
    history = targeted("history", "every change ever made to one target, oldest first")
    for p in (listing, history):
        p.add_argument("--format", choices=["table", "csv", "json"], default="table")
        p.add_argument("--columns", help="comma-separated columns to show")
    comment = targeted("comment", "add a comment")
    comment.add_argument("text")
    tag = targeted("tag", "put tags on a target (or take them off with --remove)")
    tag.add_argument("tags", nargs="+")
    tag.add_argument("--remove", action="store_true", help="take these tags off")
    sign = targeted("sign-off", "sign off a target with a grade and a reason (or --clear the sign-off)")
    sign.add_argument("grade", nargs="?", choices=["good", "warn", "fail"])
    sign.add_argument("--reason", required=True)
    sign.add_argument("--clear", action="store_true", help="withdraw the sign-off in force")
    classify = targeted("classify", "label a source")
    classify.add_argument("label")
    classify.add_argument("--note")
    export = actions.add_parser("export", help="write every event to a JSON Lines file")
    export.add_argument("path")
    export.add_argument("--since", help="ISO-8601 date/time")
    imported = actions.add_parser(
        "import", help="add the events of a JSON Lines export (twice changes nothing)"
    )
    imported.add_argument("path")
    imported.add_argument("--skip-missing", action="store_true", help="leave out targets this site lacks")


def _target(kind: str, ident: str) -> tuple[str, int | str]:
    """On the command line an image or job given as digits is its id (paths and run ids are never digits)."""
    if kind in ("image", "job") and ident.isdigit():
        return kind, int(ident)
    return kind, ident


def _notes_list(client: Client, ns: argparse.Namespace, out: TextIO) -> None:
    target = None
    if ns.target is not None:
        kind, sep, ident = ns.target.partition(":")
        if not sep or kind not in _TARGET_KINDS:
            raise ValidationError(
                f"--target is KIND:ID with KIND one of {', '.join(_TARGET_KINDS)}, got {ns.target!r}"
            )
        target = _target(kind, ident)
    frame = client.notes.list(kind=ns.kind, target=target, tag=ns.tag, author=ns.author, since=ns.since)
    _emit(_pick_columns(frame, ns.columns), ns.format, out)


def _notes_history(client: Client, ns: argparse.Namespace, out: TextIO) -> None:
    frame = client.notes.history(_target(ns.kind, ns.target))
    _emit(_pick_columns(frame, ns.columns), ns.format, out)


def _written(out: TextIO, *events: NoteEvent) -> None:
    for event in events:
        out.write(f"recorded {event.action} on {event.target_kind} {event.target} ({event.event_id})\n")


def _notes_comment(client: Client, ns: argparse.Namespace, out: TextIO) -> None:
    _written(out, client.notes.comment(_target(ns.kind, ns.target), ns.text))


def _notes_tag(client: Client, ns: argparse.Namespace, out: TextIO) -> None:
    call = client.notes.untag if ns.remove else client.notes.tag
    _written(out, *call(_target(ns.kind, ns.target), *ns.tags))


def _notes_sign_off(client: Client, ns: argparse.Namespace, out: TextIO) -> None:
    target = _target(ns.kind, ns.target)
    if ns.clear:
        if ns.grade is not None:
            raise ValidationError("--clear takes no grade")
        _written(out, client.notes.clear_sign_off(target, ns.reason))
    elif ns.grade is None:
        raise ValidationError("give a grade (good, warn or fail), or --clear")
    else:
        _written(out, client.notes.sign_off(target, ns.grade, ns.reason))


def _notes_classify(client: Client, ns: argparse.Namespace, out: TextIO) -> None:
    _written(out, client.notes.classify(_target(ns.kind, ns.target), ns.label, ns.note))


def _notes_export(client: Client, ns: argparse.Namespace, out: TextIO) -> None:
    out.write(f"wrote {client.notes.export(ns.path, since=ns.since):,} events to {ns.path}\n")


def _notes_import(client: Client, ns: argparse.Namespace, out: TextIO) -> None:
    done = client.notes.import_(ns.path, missing="skip" if ns.skip_missing else "error")
    out.write(
        f"read {done.read:,} events: {done.added:,} added, {done.already_present:,} already here, "
        f"{done.skipped:,} skipped (target not on this site)\n"
    )


_NOTES: dict[str, Handler] = {
    "list": _notes_list,
    "history": _notes_history,
    "comment": _notes_comment,
    "tag": _notes_tag,
    "sign-off": _notes_sign_off,
    "classify": _notes_classify,
    "export": _notes_export,
    "import": _notes_import,
}


def _migrate(ns: argparse.Namespace, out: TextIO) -> None:
    import asyncio
    import os

    from tqdm import tqdm

    from .migrate import migrate
    from .settings import ENV_PRODUCTS_DB

    source = ns.source or os.environ.get(ENV_PRODUCTS_DB)
    if not source:
        raise ConfigurationError(f"say which SQLite database to copy: --from FILE (or set {ENV_PRODUCTS_DB})")
    bars: dict[str, tqdm[Any]] = {}

    def progress(table: str, done: int, total: int) -> None:
        bar = bars.get(table)
        if bar is None:
            bar = bars[table] = tqdm(total=total, desc=table, unit="row", file=sys.stderr, leave=False)
        bar.n = done
        bar.refresh()

    try:
        summary = asyncio.run(migrate(Path(source), ns.target, progress=progress))
    finally:
        for bar in bars.values():
            bar.close()
    for table, rows in summary.copied.items():
        out.write(f"copied {table}: {rows:,} rows\n")
    if summary.skipped:
        out.write(f"already copied earlier: {', '.join(summary.skipped)}\n")
    out.write(f"done: {summary.target}\n")


def _demo(ns: argparse.Namespace, out: TextIO) -> None:
    from tqdm import tqdm

    from .arguments import to_utc_timestamp
    from .demo import build_demo_site
    from .demo.site import size_for_rows

    now = None if ns.now is None else to_utc_timestamp(ns.now, "--now").to_pydatetime()
    scale = ns.scale if getattr(ns, "rows", None) is None else size_for_rows(ns.rows)
    with tqdm(total=6, desc="building demo site", unit="step", file=sys.stderr) as bar:

        def progress(step: str, done: int, total: int) -> None:
            bar.set_postfix_str(step)
            bar.n = done
            bar.refresh()

        site = build_demo_site(Path(ns.folder), scale=scale, schema=ns.schema, now=now, progress=progress)
    for name, value in site.env.items():
        out.write(f"export {name}={value}\n")


def _lab(ns: argparse.Namespace, out: TextIO) -> NoReturn:
    """Build the demo site if it is missing, then run JupyterLab on notebooks/ with the environment set."""
    import os
    import shutil

    from .demo import DemoSite

    folder = Path(ns.folder)
    site = DemoSite.existing(folder)
    if not site.products_db.exists():
        _demo(ns, out)
        site = DemoSite.existing(folder)
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or shutil.which("jupyter")
    if jupyter is None:
        raise ConfigurationError(
            "JupyterLab is not installed here: run `make lab` or `pip install 'contimg-toolkit[lab]'`"
        )
    notebooks = Path(ns.notebooks)
    if not notebooks.is_dir():
        raise ConfigurationError(
            f"no notebooks folder at {notebooks}: run from the project folder or pass --notebooks"
        )
    env = {**os.environ, **{k: str(Path(v).resolve()) for k, v in site.env.items()}}
    command = [
        jupyter,
        "lab",
        f"--notebook-dir={notebooks}",
        f"--ip={ns.ip}",
        f"--port={ns.port}",
        "--no-browser",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI machines run as root; Jupyter refuses otherwise
    out.write(
        f"demo site: {folder.resolve()}\nstarting: {' '.join(command)} (the URL with its token follows)\n"
    )
    out.flush()
    # exec, not a child process: Ctrl-C and `kill PID` then reach JupyterLab itself, and no server is orphaned.
    os.execve(jupyter, command, env)


# The page `contimg dashboard` serves: one cell, its code hidden by Voila
DASHBOARD_CELL = (
    "from toolkit import Client\nfrom toolkit.widgets import NightPanel\n\nNightPanel(Client(), poll={poll})"
)


def dashboard_notebook(poll: int) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": []}
    return {
        "cells": [{**cell, "source": DASHBOARD_CELL.format(poll=poll)}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _dashboard(ns: argparse.Namespace, out: TextIO) -> NoReturn:
    """Serve the night view alone (Voila: no code, nothing to edit) for a control-room screen, with a token."""
    import json
    import os
    import secrets
    import shutil
    import tempfile

    from .demo import DemoSite

    env = dict(os.environ)
    if "PIPELINE_PRODUCTS_DB" not in env:  # nothing configured: the demo site, as `contimg lab` does
        folder = Path(ns.folder)
        if not DemoSite.existing(folder).products_db.exists():
            _demo(ns, out)
        env.update({k: str(Path(v).resolve()) for k, v in DemoSite.existing(folder).env.items()})
        out.write(f"demo site: {folder.resolve()}\n")
    voila = shutil.which("voila", path=str(Path(sys.executable).parent)) or shutil.which("voila")
    if voila is None:
        raise ConfigurationError(
            "Voila is not installed here: run `make lab` or `pip install 'contimg-toolkit[lab]'`"
        )
    poll = check_count(ns.poll, "--poll", low=1, high=3600)
    folder = Path(tempfile.mkdtemp(prefix="contimg-dashboard-"))
    notebook = folder / "night.ipynb"
    notebook.write_text(json.dumps(dashboard_notebook(poll)))
    token = ns.token or secrets.token_hex(24)
    command = [
        voila, str(notebook), "--no-browser", f"--Voila.ip={ns.ip}", f"--port={ns.port}", f"--token={token}",
        "--theme=light", "--show_tracebacks=False", "--template=contimg",
    ]  # fmt: skip
    # Our template (toolkit/share/voila/templates/contimg) is found on the Jupyter data path
    share = str(Path(__file__).resolve().parent / "share")
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (share, env.get("JUPYTER_PATH", "")) if p)
    out.write(f"the night view, every {poll} s: http://{ns.ip}:{ns.port}/?token={token}\n")
    out.flush()
    os.execve(voila, command, env)  # as `contimg lab`: signals reach the server itself


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="contimg", description="Explore a continuum-imaging pipeline's products."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="build a demo site and print the variables that point at it")
    demo.add_argument("folder", nargs="?", default="demo-site")
    demo.add_argument("--scale", choices=["small", "bench"], default="small")
    demo.add_argument(
        "--rows",
        type=int,
        help="N photometry rows (1,000 to 12,000,000; whole sources of 100 epochs) on the bench site's images",
    )
    demo.add_argument(
        "--schema",
        choices=["newer", "older", "seed"],
        default="newer",
        help="newer (default); older: the older layout; seed: newer, with the seed-era 15-column photometry",
    )
    demo.add_argument(
        "--now", help="ISO-8601 time the site's data ends at (default: now), e.g. 2025-10-06 for an old site"
    )

    lab = sub.add_parser("lab", help="build the demo site if missing and start JupyterLab on the notebooks")
    lab.add_argument("folder", nargs="?", default="demo-site")
    lab.add_argument("--notebooks", default="notebooks")
    lab.add_argument("--ip", default="127.0.0.1")
    lab.add_argument("--port", type=int, default=8888)
    lab.set_defaults(scale="small", schema="newer", now=None)  # the demo site it builds when missing

    dash = sub.add_parser(
        "dashboard", help="serve the last night, live, as a read-only web page for a control-room screen"
    )
    dash.add_argument(
        "folder", nargs="?", default="demo-site", help="demo site used when nothing is configured"
    )
    dash.add_argument("--ip", default="127.0.0.1")
    dash.add_argument("--port", type=int, default=8866)
    dash.add_argument("--poll", type=int, default=10, help="seconds between checks for new data (1-3600)")
    dash.add_argument("--token", help="the page's token (default: a new random one, printed with the URL)")
    dash.set_defaults(scale="small", schema="newer", now=None)

    def listing(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--format", choices=["table", "csv", "json"], default="table")
        p.add_argument("--columns", help="comma-separated columns to show")
        return p

    stats = listing("stats", "dashboard counts")
    stats.add_argument(
        "-v", "--verbose", action="store_true", help="say which databases and folders were read, and why"
    )
    images = listing("images", "list images (newest first)")
    images.add_argument("--type", action="append", help=f"image type, repeatable: {', '.join(IMAGE_TYPES)}")
    images.add_argument("--ms-path", dest="ms_path")
    images.add_argument("--tag", help="only images carrying this tag in the notes")
    ms = listing("ms", "list measurement sets (newest observation first)")
    ms.add_argument("--stage", action="append", help=f"stage, repeatable: {', '.join(MS_STAGES)}")
    ms.add_argument("--status", action="append", help=f"status, repeatable: {', '.join(MS_STATUSES)}")
    jobs = listing("jobs", "list jobs (newest first)")
    jobs.add_argument("--status", action="append", help=f"status, repeatable: {', '.join(JOB_STATUSES)}")
    for p in (images, ms, jobs):
        p.add_argument("--since", help="ISO-8601 date/time")
        p.add_argument("--until", help="ISO-8601 date/time")
    sources = listing("sources", "list sources")
    sources.add_argument("--min-detections", dest="min_detections", type=int)
    sources.add_argument("--label", help="only sources with this label in the notes")
    sources.add_argument("--name", help="the source with this J2000 designation, e.g. J123456.7+123456.7")
    sources.add_argument("--image", help="the sources measured in this image (id or path)")
    for p in (images, ms, jobs, sources):
        p.add_argument("--limit", type=int, default=20, help="rows to show (default 20)")
        p.add_argument("--offset", type=int, default=0)
    cal = listing("cal", "list calibration tables")
    cal.add_argument("--set-name", dest="set_name")
    cal.add_argument("--table-type", dest="table_type", action="append", help=", ".join(TABLE_TYPES))
    cal.add_argument("--status", action="append", help=", ".join(CAL_STATUSES))
    cal.add_argument("--valid-at-mjd", dest="valid_at_mjd", type=float)
    cal.add_argument("--source-ms-path", dest="source_ms_path", help="the tables solved from this MS")

    export = sub.add_parser(
        "export",
        help="stream photometry, images, MS or jobs to a Parquet or CSV file, with a manifest beside it",
    )
    exports = export.add_subparsers(dest="what", required=True, metavar="WHAT")
    photometry = exports.add_parser(
        "photometry", help="the photometry table (filters as sources.measurements)"
    )
    photometry.add_argument("--source-id", action="append", help="only this source (repeatable)")
    photometry.add_argument("--start-mjd", type=float)
    photometry.add_argument("--end-mjd", type=float)
    photometry.add_argument("--columns", help="comma-separated photometry columns (default: all)")
    photometry.add_argument(
        "--batch-rows", type=int, default=250_000, help="rows per batch (memory holds one)"
    )
    listed = {
        "images": exports.add_parser("images", help="images as `contimg images` lists them"),
        "ms": exports.add_parser("ms", help="measurement sets as `contimg ms` lists them"),
        "jobs": exports.add_parser("jobs", help="jobs as `contimg jobs` lists them"),
    }
    listed["images"].add_argument("--type", action="append", help=", ".join(IMAGE_TYPES))
    listed["images"].add_argument("--ms-path", dest="ms_path")
    listed["images"].add_argument("--tag", help="only images carrying this tag in the notes")
    listed["ms"].add_argument("--stage", action="append", help=", ".join(MS_STAGES))
    listed["ms"].add_argument("--status", action="append", help=", ".join(MS_STATUSES))
    listed["jobs"].add_argument("--status", action="append", help=", ".join(JOB_STATUSES))
    for p in listed.values():
        p.add_argument("--since", help="ISO-8601 date/time")
        p.add_argument("--until", help="ISO-8601 date/time")
        p.add_argument("--search", help="only paths containing this text")
        p.add_argument("--batch-rows", type=int, default=1_000, help="rows per page (1 to 1,000)")
    for p in (photometry, *listed.values()):
        p.add_argument("file", help="the file to write: .parquet (or .pq) or .csv")
        p.add_argument(
            "--format", dest="export_format", choices=["parquet", "csv"], help="default: the suffix"
        )
        p.add_argument("--overwrite", action="store_true", help="replace an existing file")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    jq = listing(
        "jobs-queue", "the pipeline's RQ job queue (PIPELINE_REDIS_URL): jobs newest first, one, or counts"
    )
    jq.add_argument("--status", action="append", help=f"repeatable: {', '.join(STATUS_KEYS)}")
    jq.add_argument("--limit", type=int, default=20)
    jq.add_argument("--job", metavar="JOB_ID", help="one job, with its traceback or result")
    jq.add_argument("--stats", action="store_true", help="how many jobs are in each state, and the workers")
    queue = listing("queue", "list the ingest queue (newest first), or the stuck groups")
    queue.add_argument("--state", action="append", help=f"state, repeatable: {', '.join(QUEUE_STATES)}")
    queue.add_argument("--stuck", metavar="AGE", help="only groups not updated for AGE (e.g. 6h, '2 days')")
    queue.add_argument("--limit", type=int, default=20)
    for p, where in (
        (images, "path"),
        (ms, "path"),
        (jobs, "MS path"),
        (sources, "source id"),
        (cal, "set name"),
        (queue, "group id"),
    ):
        p.add_argument("--search", help=f"only rows whose {where} contains this text (any case)")
    services = listing("services", "health of the databases, log folders and configured endpoints")
    services.add_argument("--timeout", type=float, default=2.0, help="seconds per check (they run at once)")

    migrate = sub.add_parser("migrate", help="copy a SQLite products database into PostgreSQL (restartable)")
    migrate.add_argument("--to", dest="target", required=True, help="postgresql://user@host:port/dbname")
    migrate.add_argument("--from", dest="source", help="the SQLite file (default: $PIPELINE_PRODUCTS_DB)")

    report = sub.add_parser("report", help="write a QA report (HTML with plots, or Markdown for .md)")
    report.add_argument(
        "--since", help="ISO-8601 date/time (default, with --until: the last night with data)"
    )
    report.add_argument("--until", help="ISO-8601 date/time")
    report.add_argument("--out", default="qa-report.html", help="file to write: .html (default) or .md")
    report.add_argument("--rules", help="QA rules TOML file (default: $CONTIMG_QA_RULES, else the defaults)")
    report.add_argument("--as-of", dest="as_of", help="grade 'stuck' and running jobs as of this time")

    _notes_parser(sub)

    logs = sub.add_parser("logs", help="read a job's log")
    logs_sub = logs.add_subparsers(dest="logs_command", required=True, metavar="ACTION")
    tail = logs_sub.add_parser("tail", help="the last lines of a job's log")
    tail.add_argument("run_id")
    tail.add_argument("-n", type=int, default=20)
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new lines (Ctrl-C stops)")
    read = logs_sub.add_parser("read", help="a job's whole log (refused above --max-bytes)")
    read.add_argument("run_id")
    read.add_argument("--max-bytes", type=int, default=16 * 1024 * 1024, help="default 16 MiB")
    grep = logs_sub.add_parser("grep", help="search a job's log")
    grep.add_argument("run_id")
    grep.add_argument("pattern")
    grep.add_argument("-C", "--context", type=int, default=0)
    grep.add_argument("-i", "--ignore-case", dest="ignore_case", action="store_true")
    grep.add_argument("-F", "--fixed-strings", dest="fixed_strings", action="store_true")
    grep.add_argument("--format", choices=["table", "csv", "json"], default="table")
    return parser


# Each listing command passes its area's filters (the fields of its Filters class) and, where the area
# pages by number, limit and offset.
_FILTERS: dict[str, tuple[str, ...]] = {
    command: (*filters.names(), *(("limit", "offset") if paged else ()))
    for command, filters, paged in (
        ("images", ImageFilters, True),
        ("ms", MSFilters, True),
        ("jobs", JobFilters, True),
        ("sources", SourceFilters, True),
        ("cal", CalFilters, False),
    )
}


def _handler(ns: argparse.Namespace) -> Handler:
    if ns.command == "notes":
        return _NOTES[ns.notes_command]
    if ns.command in _FILTERS:
        return _list(ns.command, _FILTERS[ns.command])
    if ns.command == "stats":
        return _stats
    if ns.command == "report":
        return _report
    if ns.command == "queue":
        return _queue
    if ns.command == "export":
        return _export
    if ns.command == "jobs-queue":
        return _jobs_queue
    if ns.command == "services":
        return _services
    return {"tail": _logs_tail, "read": _logs_read}.get(ns.logs_command, _logs_grep)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = sys.stdout if out is None else out
    ns = _parser().parse_args(argv)
    try:
        if ns.command == "demo":
            _demo(ns, out)
            return 0
        if ns.command == "lab":
            _lab(ns, out)
        if ns.command == "dashboard":
            _dashboard(ns, out)
        if ns.command == "migrate":
            _migrate(ns, out)
            return 0
        with Client() as client:
            _handler(ns)(client, ns, out)
        return 0
    except ToolkitError as exc:
        if ns.debug:
            raise
        if getattr(ns, "format", None) == "json":  # scripts read the code, not the wording
            print(json.dumps({"error": exc.to_dict()}, default=str), file=sys.stderr)
        else:
            print(f"contimg: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug of ours: one line, not a traceback, unless asked for
        if ns.debug:
            raise
        print(
            f"contimg: internal error: {type(exc).__name__}: {exc}; rerun with --debug and report it",
            file=sys.stderr,
        )
        return 1


def run_main() -> Any:
    """The ``contimg`` console script."""
    sys.exit(main())
