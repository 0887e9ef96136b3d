"""Writing the files the toolkit produces (reports, notes exports): checked first, then written atomically."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import FileNotAccessibleError, ValidationError


def check_output_path(path: str | os.PathLike[str], suffixes: tuple[str, ...], what: str) -> Path:
    """A path ``what`` may be written to: one of ``suffixes``, in an existing folder, not a folder, and not
    an SQLite database (a mistyped path must never cost a database)."""
    if not isinstance(path, str | os.PathLike):
        raise ValidationError(f"a path to write {what} to must be text or a path, not {path!r}")
    target = Path(path).expanduser()
    if target.suffix.lower() not in suffixes:
        raise ValidationError(f"{what} written to {target} must end in {' or '.join(suffixes)}")
    try:
        folder_ok, is_folder, exists = target.parent.is_dir(), target.is_dir(), target.exists()
    except OSError as exc:  # a name too long for the file system, a loop of links
        raise FileNotAccessibleError(f"cannot write {str(target)[:200]}: {exc.strerror or exc}") from exc
    if not folder_ok:
        raise FileNotAccessibleError(f"cannot write {target}: folder {target.parent} does not exist")
    if is_folder:
        raise FileNotAccessibleError(f"cannot write {target}: it is a folder")
    if exists:
        try:
            with target.open("rb") as existing:
                head = existing.read(16)
        except OSError as exc:
            raise FileNotAccessibleError(f"cannot write {target}: {exc.strerror or exc}") from exc
        if head == b"SQLite format 3\x00":
            raise ValidationError(f"refusing to overwrite {target}: it is an SQLite database, not {what}")
    return target


def write_atomically(target: Path, text: str) -> None:
    """Never half a file: write beside it, then rename over it."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise FileNotAccessibleError(f"cannot write {target}: {exc.strerror or exc}") from exc
