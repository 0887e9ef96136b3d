"""``python -m toolkit``: the same as the ``contimg`` command."""

from __future__ import annotations

from .cli import run_main

run_main()
