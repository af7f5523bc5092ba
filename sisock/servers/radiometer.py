"""``sisock radiometer``: the UCSC radiometer PWV archive as the data node ``ucsc_radiometer``.

One file per UTC day: ``DATA_DIRECTORY/PWV/PWV_UCSC_<year>-<day of year>.txt``
(in 2018 up to day 201 the name was ``PWV_UCSC_<day of year>-<year>.txt``;
both are recognised in any year, the year being the four-digit part). One
header line, then ``<fractional day of year> <pwv>`` lines, day 1.0 being
1 January 00:00 UTC; ``NaN`` values are left out. One field, ``pwv``.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import List, Optional

import numpy as np

from sisock.config import Config
from sisock.datanode import data_result, field_info
from sisock.servers.archive_files import ArchiveServer, Series, sorted_by_time, two_columns

DAY = 86400.0
FIELD = "pwv"
NAME = re.compile(r"^PWV_UCSC_(?P<a>\d{1,4})-(?P<b>\d{1,4})\.txt$")
#: Samples of a day's file may run a little past midnight: read the neighbours' files too.
MARGIN = DAY


@dataclass(frozen=True)
class DayFile:
    """One day's file, known by its name."""

    path: Path
    year: int
    day: int

    @property
    def start(self) -> float:
        """UNIX time of the day's first second (UTC)."""
        return calendar.timegm((self.year, 1, 1, 0, 0, 0)) + (self.day - 1) * DAY


def parse_name(path: Path) -> Optional[DayFile]:
    """Year and day of year of ``PWV_UCSC_<year>-<day>.txt`` or ``PWV_UCSC_<day>-<year>.txt``."""
    match = NAME.match(path.name)
    if match is None:
        return None
    a, b = match["a"], match["b"]
    if len(a) == 4 and len(b) <= 3:
        year, day = int(a), int(b)
    elif len(b) == 4 and len(a) <= 3:
        year, day = int(b), int(a)
    else:
        return None
    return DayFile(path, year, day) if 1 <= day <= 366 else None


def read_file(path: Path, year: int) -> Series:
    """A day's file as UNIX times and PWV values, without the NaN ones."""
    day, pwv = two_columns(path.read_text(errors="replace"), skip_lines=1)
    keep = np.isfinite(day) & np.isfinite(pwv)
    t = calendar.timegm((year, 1, 1, 0, 0, 0)) + (day[keep] - 1.0) * DAY
    return sorted_by_time(t, pwv[keep])


class RadiometerServer(ArchiveServer[DayFile]):
    """Serves the UCSC radiometer PWV archive."""

    name = "ucsc_radiometer"
    description = "PWV readings from the UCSC radiometer"
    command = "radiometer"
    subdirectory = "PWV"
    parse_name = staticmethod(parse_name)

    def _days(self, start: float, end: float, margin: float = 0.0) -> List[DayFile]:
        """The files of the days that overlap ``[start, end)``, widened by ``margin`` seconds."""
        chosen = [f for f in self.listing.entries() if f.start < end + margin and f.start + DAY > start - margin]
        return sorted(chosen, key=lambda f: (f.start, f.path.name))

    def get_fields(self, start: float, end: float):
        if not self._days(start, end):
            return {}, {}
        return {FIELD: field_info(FIELD, "PWV from the UCSC radiometer", "mm")}, {FIELD: {"interval": None,
                                                                                          "field": [FIELD]}}

    def get_data(self, fields: List[str], start: float, end: float, min_stride: Optional[float]):
        if FIELD not in fields:
            return data_result({})
        sources = ((f.path, partial(read_file, year=f.year)) for f in self._days(start, end, MARGIN))
        t, v = self.read(sources, start, end)
        return data_result({FIELD: (t, {FIELD: v})})


def main(args, config: Config) -> int:
    """Run the UCSC radiometer server until SIGTERM."""
    return RadiometerServer(config).run()
