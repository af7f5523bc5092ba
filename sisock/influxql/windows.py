"""GROUP BY time buckets as InfluxDB 1.x cuts them: interval, offset, and tz() (a zone's offset moves
bucket starts, and a DST change shortens or lengthens the bucket it falls in, by less than the interval).

Times are int64 nanoseconds; ranges are inclusive ``[start, end]`` as InfluxDB keeps them.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import List, Optional, Tuple
from zoneinfo import ZoneInfo

MIN_TIME = -(2**63) + 2  # InfluxDB's earliest and latest representable times
MAX_TIME = 2**63 - 2
SECOND = 10**9


def zone_offset(zone: Optional[ZoneInfo], t: int) -> int:
    """The zone's UTC offset (ns) at time ``t`` (0 without a zone)."""
    if zone is None:
        return 0
    seconds = max(min(t // SECOND, 253402300799), -62135596800)  # what datetime can hold
    offset = dt.datetime.fromtimestamp(seconds, dt.timezone.utc).astimezone(zone).utcoffset()
    return int(offset.total_seconds()) * SECOND if offset else 0


@dataclass(frozen=True)
class Grid:
    """A GROUP BY time grid: ``interval`` and ``offset`` (ns), in ``zone`` (None = UTC)."""

    interval: int
    offset: int = 0
    zone: Optional[ZoneInfo] = None

    def window(self, t: int) -> Tuple[int, int]:
        """``(start, end)`` of the bucket holding ``t``."""
        d = self.interval
        t -= self.offset
        zone = zone_offset(self.zone, t)
        into = (t + zone) % d
        start = MIN_TIME if MIN_TIME + into >= t else t - into
        if self.zone is not None:
            moved = zone - zone_offset(self.zone, start)
            if moved and abs(moved) < d:
                start += moved
        rest = d - into
        end = MAX_TIME if MAX_TIME - rest <= t else t + rest
        if self.zone is not None:
            moved = zone - zone_offset(self.zone, end)
            if moved and abs(moved) < d:
                if moved > 0 or zone_offset(self.zone, end + moved) == zone_offset(self.zone, end):
                    end += moved
        return start + self.offset, end + self.offset

    def starts(self, first: int, last: int) -> List[int]:
        """The starts of the buckets from the one holding ``first`` to the one holding ``last``,
        stepped as InfluxDB's fill does (a step crossing a zone change moves by that change)."""
        t = self.window(first)[0]
        end = self.window(last)[0]
        if self.zone is None:
            return list(range(t, end + 1, self.interval))
        zone = zone_offset(self.zone, t)
        out = []
        while t <= end:
            out.append(t)
            t += self.interval
            if self.zone is not None:
                now = zone_offset(self.zone, t - 1)
                if now != zone:
                    if abs(zone - now) < self.interval:
                        t += zone - now
                    zone = now
        return out

    def count(self, first: int, last: int) -> int:
        """How many buckets :meth:`starts` gives (without making them: for the cap)."""
        a, b = self.window(first)[0], self.window(last)[0]
        return (b - a + self.interval) // self.interval
