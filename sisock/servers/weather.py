"""``sisock weather``: the example data node server, ``apex_archive``.

Serves text files in the original example format from ``DATA_DIRECTORY``
(default: the synthetic set shipped in ``sisock/examples/weather``): line 1
``# description``, line 2 ``# timeline name``, line 3 ``# units``, then
``unix_time value`` lines. A field is named after its file. Files are parsed
once and parsed again when their size or mtime changes.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from sisock.config import Config
from sisock.datanode import DataNodeServer, data_result, field_info

EXAMPLE_DIRECTORY = Path(__file__).resolve().parent.parent / "examples" / "weather"


@dataclass
class WeatherFile:
    """One parsed field file."""

    field: str
    description: str
    timeline: str
    units: str
    t: np.ndarray
    values: np.ndarray
    stamp: Tuple[int, int]


def parse(path: Path) -> WeatherFile:
    """Parse a field file; raise ValueError naming the file and line on bad content."""
    stat = path.stat()
    with open(path) as handle:
        header = [handle.readline() for _ in range(3)]
        if not all(line.startswith("#") for line in header):
            raise ValueError(f"{path}: the first three lines must be '# description', '# timeline', '# units'")
        description, timeline, units = (line[1:].strip() for line in header)
        try:
            table = np.loadtxt(handle, dtype=float, ndmin=2, comments="#")
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    if table.size == 0:
        table = np.empty((0, 2))
    if table.shape[1] != 2:
        raise ValueError(f"{path}: each data line must be 'unix_time value'")
    order = np.argsort(table[:, 0], kind="stable")
    return WeatherFile(path.stem, description, timeline or path.stem, units,
                       table[order, 0], table[order, 1], (stat.st_size, stat.st_mtime_ns))


class WeatherServer(DataNodeServer):
    """Serves a directory of weather field files."""

    name = "apex_archive"
    description = "APEX weather archive (example data node server)"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.directory = config.data_directory or EXAMPLE_DIRECTORY
        self._files: Dict[Path, WeatherFile] = {}
        self._lock = threading.Lock()

    def files(self) -> List[WeatherFile]:
        """Every readable field file, re-parsed when it changed; bad files are logged and skipped."""
        current = {}
        with self._lock:
            for path in sorted(self.directory.glob("*.txt")):
                try:
                    stat = path.stat()
                    cached = self._files.get(path)
                    if cached is None or cached.stamp != (stat.st_size, stat.st_mtime_ns):
                        cached = parse(path)
                    current[path] = cached
                except (OSError, ValueError) as exc:
                    self.log.warn("skipping {path}: {error}", path=str(path), error=str(exc))
            self._files = current
        return list(current.values())

    def get_fields(self, start: float, end: float):
        fields: Dict[str, dict] = {}
        timelines: Dict[str, dict] = {}
        for f in self.files():
            i, j = np.searchsorted(f.t, [start, end])
            if j <= i:
                continue
            fields[f.field] = field_info(f.timeline, f.description, f.units)
            tl = timelines.setdefault(f.timeline, {"interval": None, "field": []})
            tl["field"].append(f.field)
            if len(f.t) > 1:
                tl["interval"] = float(np.median(np.diff(f.t)))
        return fields, timelines

    def get_data(self, fields: List[str], start: float, end: float, min_stride: Optional[float]):
        timelines: Dict[str, Tuple[np.ndarray, Dict[str, np.ndarray]]] = {}
        by_name = {f.field: f for f in self.files()}
        for name in fields:
            f = by_name.get(name)
            if f is None:
                continue
            i, j = np.searchsorted(f.t, [start, end])
            key = f.timeline
            if key in timelines and not np.array_equal(timelines[key][0], f.t[i:j]):
                key = f"{f.timeline}:{f.field}"  # same timeline name, different samples
            timelines.setdefault(key, (f.t[i:j], {}))[1][name] = f.values[i:j]
        return data_result(timelines)


def main(args, config: Config) -> int:
    """Run the weather example server until SIGTERM."""
    return WeatherServer(config).run()
