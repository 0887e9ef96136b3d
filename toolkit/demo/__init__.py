"""Build a realistic, deterministic demo site: products DB, calibration registry, ingest queue and job logs.

The data follows the pipeline's schema (:mod:`toolkit.schema`) and has what real data has: failed and stuck
measurement sets, missing values, several image types, strongly variable sources and one transient, active,
retired and failed calibration sets, jobs in every status, and tables the toolkit does not read.

``contimg demo DIR [--scale bench] [--schema older]`` builds one from the shell. Each table has its own
generator module (``observations``, ``products``, ``jobs``, ``qa``, ``calibration``, ``queue``); ``build``
runs them in order and ``tables`` writes their columns.
"""

from __future__ import annotations

from .build import build_demo_site
from .site import BENCH, SIZES, SMALL, DemoSite, DemoSize

__all__ = ["BENCH", "SIZES", "SMALL", "DemoSite", "DemoSize", "build_demo_site"]
