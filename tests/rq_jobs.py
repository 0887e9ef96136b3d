"""Functions the job-queue tests put in RQ (a worker imports them by name, so they live in a module)."""

from __future__ import annotations

import time


def add(a: int, b: int) -> int:
    return a + b


def boom(x: int) -> None:
    raise ValueError(f"bad value {x}")


class Thing:
    def __init__(self, v: int) -> None:
        self.v = v


def thing(v: int) -> Thing:
    return Thing(v)


def slow(seconds: float) -> str:
    time.sleep(seconds)
    return "done"
