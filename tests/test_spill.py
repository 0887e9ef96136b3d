"""An answer past its share of the memory budget goes to unnamed temporary files and comes back mapped
(toolkit.spill): the joined frame equals the parts concatenated, on real files, with nothing left on disk."""

from __future__ import annotations

import gc
import mmap
import os
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.errors import FileNotAccessibleError
from toolkit.spill import SpillingParts


def is_mapped(array: Any) -> bool:
    """True when a numpy array's memory is a file map (walking its chain of bases)."""
    base = array
    while base is not None:
        if isinstance(base, mmap.mmap):
            return True
        base = getattr(base, "base", None) if not isinstance(base, memoryview) else base.obj
    return False


def pairs_part(rng: np.random.Generator, rows: int, first_id: int) -> pd.DataFrame:
    ids = [f"J{first_id + k // 3:06d}+ü{'x' * (k % 4)}" for k in range(rows)]  # not ASCII, '' never
    return pd.DataFrame(
        {
            "source_id": pd.array(ids, dtype="str"),
            "mjd_a": rng.uniform(60_000, 60_100, rows),
            "n": rng.integers(-5, 5, rows).astype("int64"),
            "flag": rng.integers(0, 2, rows).astype(bool),
        }
    )


def test_parts_past_the_limit_come_back_mapped_and_equal_to_their_concatenation(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    parts = [pairs_part(rng, rows, 1000 * k) for k, rows in enumerate([500, 0, 3000, 1, 2000])]
    spill = SpillingParts(10_000, directory=str(tmp_path))
    for part in parts:
        spill.add(part)
        assert not list(tmp_path.iterdir())  # unnamed files: nothing to leave behind, even on a crash
    assert spill.spilled
    got = spill.frame()
    want = pd.concat([p for p in parts if len(p)], ignore_index=True)
    pd.testing.assert_frame_equal(got, want)
    assert is_mapped(got["mjd_a"].to_numpy()) and is_mapped(got["n"].to_numpy())
    got.loc[0, "mjd_a"] = -1.0  # the map is copy-on-write: an edit is the frame's own
    assert got.loc[0, "mjd_a"] == -1.0 and got["source_id"].iloc[-1] == want["source_id"].iloc[-1]
    del got
    assert not list(tmp_path.iterdir())


def test_parts_under_the_limit_stay_in_memory(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    parts = [pairs_part(rng, 100, 0), pairs_part(rng, 50, 100)]
    spill = SpillingParts(10**9, directory=str(tmp_path))
    for part in parts:
        spill.add(part)
    got = spill.frame()
    assert not spill.spilled and not is_mapped(got["mjd_a"].to_numpy())
    pd.testing.assert_frame_equal(got, pd.concat(parts, ignore_index=True))
    # Every part empty: the first one (its columns and dtypes) is the answer, as a chunked read gives it.
    empty = SpillingParts(0)
    first = parts[0].iloc[:0]
    empty.add(first)
    empty.add(pd.DataFrame())
    pd.testing.assert_frame_equal(empty.frame(), first)


def owner(array: np.ndarray) -> np.ndarray:
    """The array that owns a view's memory."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def test_a_spilled_part_is_not_kept_in_memory(tmp_path: Path) -> None:
    """Once a part is in the files nothing holds its arrays, not even the first part's (kept for its
    columns and dtypes, in case every part is empty)."""
    rng = np.random.default_rng(9)
    parts = [pairs_part(rng, 200, 0), pairs_part(rng, 200, 100)]
    want = pd.concat(parts, ignore_index=True)
    spill = SpillingParts(1000, directory=str(tmp_path))
    alive = [weakref.ref(owner(part["mjd_a"].to_numpy())) for part in parts]
    for part in parts:
        spill.add(part)
    del parts, part
    gc.collect()
    assert spill.spilled and [ref() for ref in alive] == [None, None]
    pd.testing.assert_frame_equal(spill.frame(), want)


def test_a_column_the_files_cannot_hold_keeps_the_answer_in_memory() -> None:
    """Strings with a missing value, or Python objects: the offsets alone cannot say 'missing'."""
    parts = [
        pd.DataFrame({"s": pd.array(["a", None, "c"], dtype="str"), "x": [1.0, 2.0, 3.0]}),
        pd.DataFrame({"s": pd.array(["d"], dtype="str"), "x": [4.0]}),
    ]
    objects = [pd.DataFrame({"o": [object(), 1]}), pd.DataFrame({"o": ["x"]})]
    for group in (parts, objects):
        spill = SpillingParts(0)
        for part in group:
            spill.add(part)
        assert not spill.spilled
        pd.testing.assert_frame_equal(spill.frame(), pd.concat(group, ignore_index=True))


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    parts=st.lists(
        st.lists(st.tuples(TEXT, st.floats(allow_nan=True), st.integers(-(2**63), 2**63 - 1)), max_size=20),
        max_size=6,
    ),
    limit=st.integers(0, 2000),
)
def test_any_parts_and_limit_join_to_their_concatenation(
    parts: list[list[tuple[str, float, int]]], limit: int, tmp_path: Path
) -> None:
    frames = [
        pd.DataFrame(
            {
                "s": pd.array([r[0] for r in rows], dtype="str"),
                "f": np.array([r[1] for r in rows], dtype="float64"),
                "i": np.array([r[2] for r in rows], dtype="int64"),
            }
        )
        for rows in parts
    ]
    spill = SpillingParts(limit, directory=str(tmp_path))
    for frame in frames:
        spill.add(frame)
    got = spill.frame()
    kept = [f for f in frames if len(f)]
    if kept:
        pd.testing.assert_frame_equal(got, pd.concat(kept, ignore_index=True))
    elif frames:
        pd.testing.assert_frame_equal(got, frames[0])
    else:
        assert got.empty


def test_a_missing_folder_is_our_error_saying_what_to_do(tmp_path: Path) -> None:
    spill = SpillingParts(0, directory=str(tmp_path / "gone"), what="two_epoch's pairs")
    with pytest.raises(FileNotAccessibleError, match=r"two_epoch's pairs .*gone.*TMPDIR"):
        spill.add(pairs_part(np.random.default_rng(1), 10, 0))


def test_a_full_disk_is_our_error(tmp_path: Path) -> None:
    """A real write that fails: the file-size limit (RLIMIT_FSIZE) makes the kernel refuse the spill's
    bytes (EFBIG) as a full disk would (ENOSPC); in a child process, so the limit is its own."""
    script = f"""
import resource, signal, numpy as np, pandas as pd
from toolkit.errors import FileNotAccessibleError
from toolkit.spill import SpillingParts
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
spill = SpillingParts(0, directory={str(tmp_path)!r})
try:
    spill.add(pd.DataFrame({{"x": np.zeros(100_000)}}))
except FileNotAccessibleError as exc:
    print("ours:", exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env={**os.environ}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ours:") and "larger disk" in done.stdout
    assert not list(tmp_path.iterdir())
