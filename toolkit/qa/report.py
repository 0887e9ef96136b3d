"""QA reports: tables computed from graded frames (pure), rendered as HTML (plots embedded) or Markdown."""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import plots
from ..arguments import TimeLike, to_utc_timestamp
from ..errors import ValidationError
from ..files import check_output_path, write_atomically
from ..mjd import mjd_to_unix
from ..vocab import GRADES
from .rules import QARules

WORST_IMAGES = 10
# Sign-offs and comments listed in a report (newest first); the rest are counted in a note
LISTED = 200
# The column that holds each kind's key in its graded frame, and in the notes
TARGET_COLUMNS = {"image": "path", "ms": "ms_path", "job": "run_id"}


@dataclass(frozen=True)
class QAReport:
    """Everything a morning QA look needs, for one time range. Build it with ``client.qa.report()``."""

    since: datetime | None
    until: datetime | None
    as_of: datetime
    rules_source: str
    totals: dict[str, dict[str, int]]  # "images"/"ms"/"jobs" -> final grade -> count
    images_per_night: pd.DataFrame  # index night (UTC date), one column per grade
    worst_images: pd.DataFrame
    failing_checks: pd.DataFrame  # check, fail, warn
    flagged_trend: pd.DataFrame  # index night; median_pct, max_pct, n
    stuck_ms: pd.DataFrame
    failed_jobs: pd.DataFrame  # run_id, ms_path, finished_at, first_error
    signed_off: dict[str, int]  # "images"/"ms"/"jobs" -> how many carry a sign-off
    overridden: dict[str, int]  # of those, how many whose sign-off differs from the computed grade
    sign_offs: pd.DataFrame  # kind, target, grade, signoff_grade, signoff_by, signoff_at, signoff_reason
    comments: pd.DataFrame  # kind, target, author, created_at, text
    flagged_thresholds: tuple[float | None, float | None] = (None, None)
    notes: tuple[str, ...] = field(default=())

    # ------------------------------------------------------------------------------------- build
    @classmethod
    def build(
        cls,
        *,
        images: pd.DataFrame,
        ms: pd.DataFrame,
        jobs: pd.DataFrame,
        first_errors: Mapping[str, str | None],
        comments: pd.DataFrame,
        since: TimeLike | None,
        until: TimeLike | None,
        rules: QARules,
        as_of: pd.Timestamp,
    ) -> QAReport:
        frames = {"images": images, "ms": ms, "jobs": jobs}
        # The team's word stands: totals count final grades (a sign-off where there is one)
        totals = {
            name: {g: int((_final(frame) == g).sum()) for g in GRADES} if len(frame) else {}
            for name, frame in frames.items()
        }
        signed = {name: _signed(frame) for name, frame in frames.items()}
        notes = []
        if not (len(images) or len(ms) or len(jobs)):
            notes.append("No images, measurement sets or jobs in this time range: nothing to grade.")
        stage_graded = int((images["graded_by"] == "stage").sum()) if len(images) else 0
        if stage_graded:
            notes.append(f"{stage_graded} images have no metrics at all and were graded by their MS stage.")
        sign_offs = _sign_offs(dict(zip(TARGET_COLUMNS, frames.values(), strict=True)))
        for what, table in (("sign-offs", sign_offs), ("comments", comments)):
            if len(table) > LISTED:
                notes.append(f"{len(table)} {what} in this range; the newest {LISTED} are listed.")
        flagged = rules["calibration.flagged_fraction"]
        return cls(
            since=_when(since, "since"),
            until=_when(until, "until"),
            as_of=as_of.to_pydatetime(),
            rules_source=rules.source,
            totals=totals,
            images_per_night=_per_night(images),
            worst_images=_worst_images(images),
            failing_checks=_failing_checks({"image": images, "ms": ms, "job": jobs}, rules),
            flagged_trend=_flagged_trend(ms),
            stuck_ms=_stuck(ms),
            failed_jobs=_failed_jobs(jobs, first_errors),
            signed_off={name: int(mask.sum()) for name, mask in signed.items()},
            overridden={
                name: int((mask & (frame["signoff_grade"] != frame["grade"]).fillna(False)).sum())
                for (name, mask), frame in zip(signed.items(), frames.values(), strict=True)
            },
            sign_offs=sign_offs.head(LISTED),
            comments=_comments(comments).head(LISTED),
            flagged_thresholds=(flagged.warn, flagged.fail) if flagged.enabled else (None, None),
            notes=tuple(notes),
        )

    @property
    def empty(self) -> bool:
        return not any(sum(counts.values()) for counts in self.totals.values())

    @property
    def title(self) -> str:
        def show(value: datetime | None, default: str) -> str:
            return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else default

        return f"QA report: {show(self.since, 'the beginning')} to {show(self.until, 'now')}"

    def __repr__(self) -> str:
        # The dataclass's own repr would print eight frames' worth of text, an empty one as "Empty
        # DataFrame": in a terminal or a notebook's plain-text output a summary says more.
        def counts(name: str) -> str:
            graded = self.totals.get(name, {})
            shown = ", ".join(f"{grade} {n}" for grade, n in graded.items() if n)
            extra = f"; signed off {self.signed_off.get(name, 0)}, overridden {self.overridden.get(name, 0)}"
            return f"  {name}: {sum(graded.values())}" + (f" ({shown})" if shown else "") + extra

        def count(frame: pd.DataFrame) -> str:
            return str(len(frame)) if len(frame) else "none"

        lines = [
            f"<{self.title}, graded {self.as_of:%Y-%m-%d %H:%M UTC}>",
            *(counts(name) for name in self.totals),
            f"  failing checks: {count(self.failing_checks)}; stuck MS: {count(self.stuck_ms)}; "
            f"failed jobs: {count(self.failed_jobs)}; sign-offs: {count(self.sign_offs)}; "
            f"comments: {count(self.comments)}",
            *(f"  note: {note}" for note in self.notes),
            "  (the tables: display it in a notebook, or .to_html(path) / .to_markdown(path))",
        ]
        return "\n".join(lines)

    # ----------------------------------------------------------------------------------- render
    def figures(self) -> dict[str, Any]:
        """The report's matplotlib figures, by name (only those with data)."""
        figures: dict[str, Any] = {}
        if len(self.images_per_night):
            figures["grades per night"] = plots.grades_per_night(self.images_per_night)
        if len(self.failing_checks):
            figures["failing checks"] = plots.failing_checks(self.failing_checks)
        if len(self.flagged_trend):
            figures["flagged fraction"] = plots.flagged_fraction_trend(
                self.flagged_trend, *self.flagged_thresholds
            )
        return figures

    def to_html(self, path: str | os.PathLike[str] | None = None) -> str:
        """A self-contained HTML page (plots as embedded PNG, no external assets); written to ``path``
        when given."""
        body = self._html_body(embed_plots=True)
        page = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head>"
            f"<body>{body}</body></html>\n"
        )
        if path is not None:
            _write(path, page, HTML_SUFFIXES)
        return page

    def _repr_html_(self) -> str:
        return (
            f'<div class="contimg-qa-report"><style>{_CSS}</style>{self._html_body(embed_plots=True)}</div>'
        )

    def _html_body(self, *, embed_plots: bool) -> str:
        parts = [f"<h1>{html.escape(self.title)}</h1>"]
        parts.append(
            f'<p class="meta">graded {self.as_of:%Y-%m-%d %H:%M UTC} with rules: {html.escape(self.rules_source)}</p>'
        )
        for note in self.notes:
            parts.append(f'<p class="note">{html.escape(note)}</p>')
        parts.append("<h2>Totals</h2>" + _html_table(self._totals_frame()))
        figures = self.figures() if embed_plots else {}
        sections: list[tuple[str, str | None, pd.DataFrame]] = [
            ("Images by grade per night", "grades per night", self.images_per_night.reset_index()),
            ("Worst images by noise", None, self.worst_images),
            ("Failing checks", "failing checks", self.failing_checks),
            ("Calibration flagged fraction per night", "flagged fraction", self.flagged_trend.reset_index()),
            ("Measurement sets stuck in a stage", None, self.stuck_ms),
            ("Failed jobs", None, self.failed_jobs),
            ("Sign-offs", None, self.sign_offs),
            ("Comments", None, self.comments),
        ]
        for heading, figure, table in sections:
            parts.append(f"<h2>{html.escape(heading)}</h2>")
            if figure in figures:
                parts.append(
                    f'<img class="plot" alt="{html.escape(figure or "")}" src="{plots.png_data_uri(figures[figure])}">'
                )
            parts.append(_html_table(table) if len(table) else '<p class="none">none</p>')
        return "\n".join(parts)

    def to_markdown(self, path: str | os.PathLike[str] | None = None) -> str:
        """The report as Markdown tables (no plots); written to ``path`` when given."""
        lines = [
            f"# {self.title}",
            "",
            f"graded {self.as_of:%Y-%m-%d %H:%M UTC} with rules: {self.rules_source}",
            "",
        ]
        lines += [f"> {note}" for note in self.notes]
        sections = [
            ("Totals", self._totals_frame()),
            ("Images by grade per night", self.images_per_night.reset_index()),
            ("Worst images by noise", self.worst_images),
            ("Failing checks", self.failing_checks),
            ("Calibration flagged fraction per night", self.flagged_trend.reset_index()),
            ("Measurement sets stuck in a stage", self.stuck_ms),
            ("Failed jobs", self.failed_jobs),
            ("Sign-offs", self.sign_offs),
            ("Comments", self.comments),
        ]
        for heading, table in sections:
            lines += ["", f"## {heading}", "", _markdown_table(table) if len(table) else "none"]
        text = "\n".join(lines) + "\n"
        if path is not None:
            _write(path, text, MARKDOWN_SUFFIXES)
        return text

    def _totals_frame(self) -> pd.DataFrame:
        rows = [
            {
                "what": name,
                **counts,
                "total": sum(counts.values()),
                "signed off": self.signed_off.get(name, 0),
                "overridden": self.overridden.get(name, 0),
            }
            for name, counts in self.totals.items()
        ]
        columns = ["what", *GRADES, "total", "signed off", "overridden"]
        return pd.DataFrame(rows, columns=columns).fillna(0)


# --------------------------------------------------------------------------------- report tables
def _when(value: TimeLike | None, name: str) -> datetime | None:
    return None if value is None else to_utc_timestamp(value, name).to_pydatetime()


def _final(frame: pd.DataFrame) -> pd.Series[Any]:
    """The final grades of a graded frame (its computed grades where the notes were not joined)."""
    return frame["final_grade"] if "final_grade" in frame else frame["grade"]


def _signed(frame: pd.DataFrame) -> pd.Series[bool]:
    if not len(frame) or "signoff_grade" not in frame:
        return pd.Series(False, index=frame.index, dtype=bool)
    return frame["signoff_grade"].notna().astype(bool)


def _sign_offs(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    columns = ["kind", "target", "grade", "signoff_grade", "signoff_by", "signoff_at", "signoff_reason"]
    parts = [
        frame.loc[_signed(frame), [TARGET_COLUMNS[kind], *columns[2:]]]
        .rename(columns={TARGET_COLUMNS[kind]: "target"})
        .assign(kind=kind)
        for kind, frame in frames.items()
        if len(frame) and "signoff_grade" in frame
    ]
    parts = [part for part in parts if len(part)]
    if not parts:
        return pd.DataFrame(columns=columns)
    table = pd.concat(parts, ignore_index=True)[columns]
    return table.sort_values("signoff_at", ascending=False, ignore_index=True)


def _comments(comments: pd.DataFrame) -> pd.DataFrame:
    columns = ["kind", "target", "author", "created_at", "text"]
    if not len(comments):
        return pd.DataFrame(columns=columns)
    table = comments.rename(columns={"target_kind": "kind"})[columns]
    return table.sort_values("created_at", ascending=False, ignore_index=True)


def _per_night(images: pd.DataFrame) -> pd.DataFrame:
    if not len(images):
        return pd.DataFrame(columns=list(GRADES))
    night = images["created_at"].dt.strftime("%Y-%m-%d").rename("night")
    counts = pd.crosstab(night, _final(images).rename("final_grade"))
    return counts.reindex(columns=[g for g in GRADES if g in counts.columns]).sort_index()


def _worst_images(images: pd.DataFrame) -> pd.DataFrame:
    columns = ["path", "type", "created_at", "rms_noise_mjy", "grade", "final_grade", "reasons"]
    if not len(images):
        return pd.DataFrame(columns=columns)
    worst = images.dropna(subset=["rms_noise_jy"]).nlargest(WORST_IMAGES, "rms_noise_jy")
    worst = worst.assign(rms_noise_mjy=(worst["rms_noise_jy"] * 1e3).round(2), final_grade=_final(worst))
    return worst[columns].reset_index(drop=True)


def _failing_checks(frames: Mapping[str, pd.DataFrame], rules: QARules) -> pd.DataFrame:
    rows = []
    for rule in rules:
        if not rule.enabled:
            continue
        frame = frames.get("ms" if rule.metric.section == "calibration" else rule.metric.section)
        column = f"{rule.name}_check"
        if frame is None or column not in frame or not len(frame):  # the report grades no sources
            continue
        fail, warn = int((frame[column] == "fail").sum()), int((frame[column] == "warn").sum())
        if fail or warn:
            rows.append({"check": rule.key, "fail": fail, "warn": warn})
    table = pd.DataFrame(rows, columns=["check", "fail", "warn"])
    return table.sort_values(["fail", "warn"], ascending=False, ignore_index=True)


def _flagged_trend(ms: pd.DataFrame) -> pd.DataFrame:
    columns = ["median_pct", "max_pct", "n"]
    if not len(ms) or ms["flagged_fraction"].notna().sum() == 0:
        return pd.DataFrame(columns=columns)
    unix = mjd_to_unix(ms["mid_mjd"])
    night = pd.to_datetime(unix, unit="s", utc=True).dt.strftime("%Y-%m-%d").rename("night")
    pct = (ms["flagged_fraction"] * 100.0).rename("pct")
    grouped = pct.groupby(night).agg(["median", "max", "count"])
    grouped.columns = columns
    grouped = grouped[grouped["n"] > 0]
    return grouped.round({"median_pct": 1, "max_pct": 1}).astype({"n": "int64"}).sort_index()


def _stuck(ms: pd.DataFrame) -> pd.DataFrame:
    columns = ["ms_path", "stage", "status", "hours_in_stage", "grade"]
    if not len(ms) or "stuck_check" not in ms:
        return pd.DataFrame(columns=columns)
    stuck = ms[ms["stuck_check"].isin(["warn", "fail"])]
    stuck = stuck.assign(hours_in_stage=stuck["hours_in_stage"].round(1))
    return stuck.sort_values("hours_in_stage", ascending=False)[columns].reset_index(drop=True)


def _failed_jobs(jobs: pd.DataFrame, first_errors: Mapping[str, str | None]) -> pd.DataFrame:
    columns = ["run_id", "ms_path", "finished_at", "first_error"]
    if not len(jobs):
        return pd.DataFrame(columns=columns)
    failed = jobs[jobs["status"].eq("failed").fillna(False)]
    errors = failed["run_id"].map(lambda r: first_errors.get(str(r)) if pd.notna(r) else None)
    return failed.assign(first_error=errors)[columns].reset_index(drop=True)


# ------------------------------------------------------------------------------------- rendering
HTML_SUFFIXES = (".html", ".htm")
MARKDOWN_SUFFIXES = (".md", ".markdown")


def check_target(path: str | os.PathLike[str]) -> Path:
    """A path a report may be written to (checked before the work of building the report)."""
    return check_output_path(path, HTML_SUFFIXES + MARKDOWN_SUFFIXES, "a report")


def _write(path: str | os.PathLike[str], text: str, suffixes: tuple[str, ...]) -> None:
    """Write a report atomically (never half a file), refusing a path that could be something the user keeps."""
    target = check_target(path)
    if target.suffix.lower() not in suffixes:
        raise ValidationError(
            f"this format is written to a file ending in {' or '.join(suffixes)}, not {target.name}"
        )
    write_atomically(target, text)


def _text(value: Any) -> str:
    if value is None or (not isinstance(value, str | bytes) and np.ndim(value) == 0 and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, pd.Timestamp | datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


GRADE_COLUMNS = frozenset({"grade", "final_grade", "signoff_grade"})


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="grade-{html.escape(_text(v)).replace(" ", "-")}">{html.escape(_text(v))}</td>'
            if c in GRADE_COLUMNS
            else f"<td>{html.escape(_text(v))}</td>"
            for c, v in zip(frame.columns, row, strict=True)
        )
        + "</tr>"
        for row in frame.itertuples(index=False, name=None)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        return _text(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False, name=None)
    ]
    return "\n".join([header, rule, *rows])


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#1f2328;max-width:75em}
.contimg-qa-report table,body table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:90%}
.contimg-qa-report th,.contimg-qa-report td,body th,body td{border:1px solid #d0d7de;padding:3px 8px;text-align:left}
th{background:#f6f8fa}
.grade-good{color:#1a7f37;font-weight:600}.grade-warn{color:#9a6700;font-weight:600}
.grade-fail{color:#cf222e;font-weight:600}.grade-not-assessed{color:#57606a}
.meta{color:#57606a}.note{background:#fff8c5;padding:4px 8px;border-radius:4px}.none{color:#57606a}
img.plot{display:block;max-width:100%;margin:.5em 0}
"""
