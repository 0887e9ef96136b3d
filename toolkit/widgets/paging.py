"""Where a table view is: its page number, size and the capped count (the pages come from ``area.page``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..domains.paging import COUNT_CAP
from ..errors import ValidationError

PAGE_SIZES = (50, 100, 200, 500)


@dataclass
class PageState:
    """The page number shown and the count of matching rows (None until counted)."""

    size: int = 50
    number: int = 0  # 0-based
    count: int | None = None
    capped: bool = False

    @property
    def pages(self) -> int | None:
        if self.count is None or self.capped:
            return None
        return max(1, -(-self.count // self.size))

    def label(self) -> str:
        total = "?" if self.count is None else (f"{COUNT_CAP:,}+" if self.capped else f"{self.count:,}")
        pages = self.pages
        return f"page {self.number + 1}{f' of {pages:,}' if pages else ''} · {total} rows"


def check_page_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not PAGE_SIZES[0] <= size <= PAGE_SIZES[-1]:
        raise ValidationError(f"page size must be between {PAGE_SIZES[0]} and {PAGE_SIZES[-1]}, got {size!r}")
    return size
