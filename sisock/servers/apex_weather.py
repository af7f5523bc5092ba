"""``sisock apex-weather``: the APEX weather archive as the data node ``apex_weather``.

Files are ``DATA_DIRECTORY/targets/<prefix>_<field>_<start ctime>_<end ctime>.dat``
with ``unix_time value`` lines. A query reads only the files whose ctimes in
the name overlap it. Each field is its own timeline, named after the field.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from sisock.config import Config
from sisock.datanode import data_result, field_info
from sisock.servers.archive_files import ArchiveServer, Series, sorted_by_time, two_columns

NAME = re.compile(r"^(?P<prefix>.+)_(?P<field>[^_]+)_(?P<start>\d+)_(?P<end>\d+)\.dat$")

#: The fields APEX has logged for years: description and units (as the original server had them).
KNOWN_FIELDS: Dict[str, Tuple[str, str]] = {
    "humidity": ("APEX weather station humidity", "%"),
    "pressure": ("APEX weather station pressure", "mBar"),
    "radiometer": ("APEX radiometer precipitable water vapour", "mm"),
    "dewpoint": ("APEX weather station dewpoint", "C"),
    "temperature": ("APEX weather station temperature", "C"),
    "windspeed": ("APEX weather station wind speed", "km/h"),
    "winddirection": ("APEX weather station wind direction", "deg"),
}


@dataclass(frozen=True)
class ArchiveFile:
    """One file of the archive, known by its name."""

    path: Path
    field: str
    start: float
    end: float


def parse_name(path: Path) -> Optional[ArchiveFile]:
    """The field and ctime range in a file's name (None for files of another kind)."""
    match = NAME.match(path.name)
    if match is None:
        return None
    return ArchiveFile(path, match["field"], float(match["start"]), float(match["end"]))


def read_file(path: Path) -> Series:
    """A file's samples in time order."""
    return sorted_by_time(*two_columns(path.read_text(errors="replace")))


class ApexWeatherServer(ArchiveServer[ArchiveFile]):
    """Serves the APEX weather archive."""

    name = "apex_weather"
    description = "Weather station information from APEX"
    command = "apex-weather"
    subdirectory = "targets"
    parse_name = staticmethod(parse_name)

    def _overlapping(self, start: float, end: float) -> List[ArchiveFile]:
        chosen = [f for f in self.listing.entries() if f.start < end and f.end >= start]
        return sorted(chosen, key=lambda f: (f.field, f.start, f.path.name))

    def get_fields(self, start: float, end: float):
        fields, timelines = {}, {}
        for name in sorted({f.field for f in self._overlapping(start, end)}):
            description, units = KNOWN_FIELDS.get(name, (f"APEX {name}", ""))
            fields[name] = field_info(name, description, units)
            timelines[name] = {"interval": None, "field": [name]}
        return fields, timelines

    def get_data(self, fields: List[str], start: float, end: float, min_stride: Optional[float]):
        by_field: Dict[str, List[ArchiveFile]] = {}
        for f in self._overlapping(start, end):
            if f.field in fields:
                by_field.setdefault(f.field, []).append(f)
        timelines = {}
        for name, chosen in by_field.items():
            t, v = self.read(((f.path, read_file) for f in chosen), start, end)
            timelines[name] = (t, {name: v})
        return data_result(timelines)


def main(args, config: Config) -> int:
    """Run the APEX weather server until SIGTERM."""
    return ApexWeatherServer(config).run()
