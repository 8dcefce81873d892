"""Cone subscriptions in a grid of 1-degree cells (dec band x ra bucket), so that matching a position looks at
one cell's few cones instead of every subscription.

A cone is listed in every cell its bounding box touches (the box widens in ra by 1/cos(dec) towards the poles
and covers every ra when it reaches a pole); a position is then checked exactly against the cones of its cell.
Very wide cones (more cells than WIDE_CELLS) are kept in a short list checked for every position.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

from .feed import Cone

WIDE_CELLS = 4000
BANDS = 180
BUCKETS = 360


class SkyIndex:
    """`add(cone, item)`, then `match(ra, dec)` -> the items whose cone holds the position."""

    def __init__(self) -> None:
        self.cells: dict[int, list[tuple[Cone, Any]]] = {}
        self.wide: list[tuple[Cone, Any]] = []
        self.size = 0

    @staticmethod
    def _band(dec: float) -> int:
        return min(BANDS - 1, max(0, int(math.floor(dec + 90.0))))

    def _cells_of(self, cone: Cone) -> Iterator[int] | None:
        lo, hi = cone.dec - cone.radius, cone.dec + cone.radius
        if lo <= -90.0 or hi >= 90.0:
            buckets = range(BUCKETS)
        else:
            widest = max(abs(lo), abs(hi))
            half = cone.radius / max(math.cos(math.radians(widest)), 1e-9)
            if half >= 180.0:
                buckets = range(BUCKETS)
            else:
                first = int(math.floor(cone.ra - half))
                last = int(math.floor(cone.ra + half))
                buckets = [b % BUCKETS for b in range(first, last + 1)]
        bands = range(self._band(lo), self._band(hi) + 1)
        if len(bands) * len(buckets) > WIDE_CELLS:
            return None
        return (band * BUCKETS + b for band in bands for b in buckets)

    def add(self, cone: Cone, item: Any) -> None:
        cells = self._cells_of(cone)
        self.size += 1
        if cells is None:
            self.wide.append((cone, item))
            return
        entry = (cone, item)
        for c in cells:
            self.cells.setdefault(c, []).append(entry)

    def match(self, ra: float | None, dec: float | None) -> list[Any]:
        if ra is None or dec is None:
            return []
        cell = self._band(dec) * BUCKETS + int(math.floor(ra)) % BUCKETS
        out = [item for cone, item in self.cells.get(cell, ()) if cone.contains(ra, dec)]
        out.extend(item for cone, item in self.wide if cone.contains(ra, dec))
        return out
