"""Reading site archives of small text files: a cached directory listing and cached parsed files.

The APEX weather and UCSC radiometer archives hold years of files; a query
picks files by name, so the listing is kept until the directory changes and
parsed files are kept (least recently used out first, up to a byte budget)
until their size or mtime changes. Both are thread-safe: ``get_data`` runs in
the reactor's thread pool.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Generic, Iterable, List, Optional, Tuple, TypeVar

import numpy as np
from twisted.internet import reactor

from sisock.config import Config, ConfigError
from sisock.datanode import DataNodeServer

#: Bytes of parsed samples a server keeps in memory.
CACHE_BYTES = 64 * 1024 * 1024

Entry = TypeVar("Entry")
Series = Tuple[np.ndarray, np.ndarray]


def two_columns(text: str, skip_lines: int = 0) -> Series:
    """The ``x y`` number pairs of a text, one per line; other lines (a header, a
    half-written last line) are left out. Returns ``(x, y)`` as float arrays."""
    lines = [line for line in text.split("\n")[skip_lines:] if line.strip()]
    tokens = " ".join(lines).split()
    table: Optional[np.ndarray] = None
    if len(tokens) == 2 * len(lines):
        try:
            table = np.array(tokens, dtype=float).reshape(-1, 2)
        except ValueError:
            table = None
    if table is None:  # some line is not two numbers: go line by line
        rows = []
        for line in lines:
            parts = line.split()
            try:
                if len(parts) == 2:
                    rows.append((float(parts[0]), float(parts[1])))
            except ValueError:
                continue
        table = np.array(rows, dtype=float).reshape(-1, 2)
    return table[:, 0], table[:, 1]


def sorted_by_time(t: np.ndarray, v: np.ndarray) -> Series:
    """``(t, v)`` ordered by time (unchanged when already ordered)."""
    if len(t) > 1 and np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        return t[order], v[order]
    return t, v


def window(t: np.ndarray, v: np.ndarray, start: float, end: float) -> Series:
    """The samples with ``start <= t < end`` of a time-ordered series."""
    i, j = np.searchsorted(t, [start, end], side="left")
    return t[i:j], v[i:j]


class Listing(Generic[Entry]):
    """The files of a directory whose names ``parse_name`` understands (it returns None
    for others), listed again only when the directory's mtime changes."""

    def __init__(self, directory: Path, parse_name: Callable[[Path], Optional[Entry]]) -> None:
        self.directory = directory
        self.parse_name = parse_name
        self._stamp: Optional[int] = None
        self._entries: List[Entry] = []
        self._lock = threading.Lock()

    def entries(self) -> List[Entry]:
        """The current entries; an absent directory has none."""
        with self._lock:
            try:
                stamp = self.directory.stat().st_mtime_ns
            except OSError:
                self._stamp, self._entries = None, []
                return []
            if stamp != self._stamp:
                with os.scandir(self.directory) as it:
                    parsed = (self.parse_name(Path(e.path)) for e in it if e.is_file())
                    self._entries = [entry for entry in parsed if entry is not None]
                self._stamp = stamp
            return list(self._entries)


class ParsedFiles:
    """Parsed files by path, re-parsed when their size or mtime changes; see the module docstring."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._files: "OrderedDict[Path, Tuple[Tuple[int, int], Series]]" = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, path: Path, parse: Callable[[Path], Series]) -> Series:
        """The parsed content of ``path`` (OSError if it cannot be read)."""
        stat = path.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._files.get(path)
            if cached is not None and cached[0] == stamp:
                self._files.move_to_end(path)
                return cached[1]
        series = parse(path)
        size = series[0].nbytes + series[1].nbytes
        with self._lock:
            old = self._files.pop(path, None)
            if old is not None:
                self._bytes -= old[1][0].nbytes + old[1][1].nbytes
            self._files[path] = (stamp, series)
            self._bytes += size
            while self._bytes > self.max_bytes and len(self._files) > 1:
                _, (_, (t, v)) = self._files.popitem(last=False)
                self._bytes -= t.nbytes + v.nbytes
        return series

    def series(self, sources: Iterable[Tuple[Path, Callable[[Path], Series]]], start: float, end: float,
               on_error: Callable[[Path, OSError], None]) -> Series:
        """The samples with ``start <= t < end`` of several files, joined in time order;
        a file that cannot be read is passed to ``on_error`` and left out."""
        parts_t, parts_v = [np.empty(0)], [np.empty(0)]
        for path, parse in sources:
            try:
                t, v = window(*self.get(path, parse), start, end)
            except OSError as exc:
                on_error(path, exc)
                continue
            parts_t.append(t)
            parts_v.append(v)
        return sorted_by_time(np.concatenate(parts_t), np.concatenate(parts_v))


class ArchiveServer(DataNodeServer, Generic[Entry]):
    """A data node server over the archive folder ``DATA_DIRECTORY/<subdirectory>``."""

    command = ""
    subdirectory = ""
    #: File name -> entry, or None for a file that is not part of the archive.
    parse_name: Callable[[Path], Optional[Entry]]

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        if config.data_directory is None:
            raise ConfigError(f"DATA_DIRECTORY is not set: sisock {self.command} reads "
                              f"DATA_DIRECTORY/{self.subdirectory}")
        self.listing: Listing[Entry] = Listing(config.data_directory / self.subdirectory, self.parse_name)
        self.files = ParsedFiles()

    def read(self, sources: Iterable[Tuple[Path, Callable[[Path], Series]]], start: float, end: float) -> Series:
        """Samples in ``[start, end)`` of these files; unreadable ones are logged and left out."""
        return self.files.series(sources, start, end, self._unreadable)

    def _unreadable(self, path: Path, error: OSError) -> None:
        self.log.warn("skipping {path}: {error}", path=str(path), error=str(error))

    def _check_directory(self) -> None:
        if self.listing.directory.is_dir():
            self.log.info("serving {directory}", directory=str(self.listing.directory))
        else:
            self.log.warn("{directory} is not a directory (yet): serving nothing until it is",
                          directory=str(self.listing.directory))

    def run(self) -> int:
        reactor.callWhenRunning(self._check_directory)
        return super().run()
