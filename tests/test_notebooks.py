"""Every notebook runs top to bottom, headless, on a fresh demo site, with no error output."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from toolkit.demo import build_demo_site

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_notebooks_exist_and_are_stripped() -> None:
    assert {p.name for p in NOTEBOOKS} >= {
        "01_quickstart.ipynb",
        "02_lightcurves.ipynb",
        "03_qa.ipynb",
        "04_job_logs.ipynb",
        "06_signoff.ipynb",
    }
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        assert all(not cell.get("outputs") for cell in book.cells if cell.cell_type == "code"), path.name


# A site the pipeline stopped writing weeks ago: "last night" is its last night, not the clock's
OLD_SITE = datetime(2025, 10, 6, 18, tzinfo=UTC)


@pytest.mark.parametrize("ended", [None, OLD_SITE], ids=["fresh site", "site weeks old"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_clean(
    path: Path, ended: datetime | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = build_demo_site(tmp_path / "site", now=ended)
    for name, value in site.env.items():
        monkeypatch.setenv(name, value)
    work = tmp_path / path.name
    shutil.copy(path, work)
    book = nbformat.read(work, as_version=4)
    NotebookClient(
        book, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute(env=dict(os.environ))
    errors = [o for cell in book.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    code_cells = [c for c in book.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code_cells)
    assert any(c.get("outputs") for c in code_cells)
    shown = [
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for c in code_cells
        for o in c.get("outputs", [])
    ]
    empty = [text[:200] for text in shown if "Empty DataFrame" in text or "Series([]" in text]
    assert empty == [], "a table came out empty"
    for cell in code_cells:  # a plot cell that shows only "<Figure size ...>" text has failed its reader
        if "plots.plot_" in cell.source:
            assert any("image/png" in o.get("data", {}) for o in cell.outputs), cell.source
