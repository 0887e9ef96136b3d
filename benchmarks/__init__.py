"""Benchmarks: side-by-side comparisons in one process, reported as ratios (``make bench``)."""
