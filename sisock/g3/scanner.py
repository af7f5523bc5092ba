"""``sisock g3-file-scanner``: keeps the index in step with the .g3 tree under DATA_DIRECTORY.

Every SCAN_INTERVAL seconds (``--once``: one pass) it walks the tree: an
unchanged file costs one ``stat``; a grown file is read on from where the last
pass stopped, once its fingerprint shows it is the same file; a cut-off last
frame waits for the next pass while the file may still be written; a damaged
frame is skipped (the frames after it are found again) and the file recorded
as bad with the reason and the byte; a deleted file leaves the index. Frames
are read with their lengths checked first (:mod:`sisock.g3.framing`), so
memory stays bounded by the file's size. Each file is committed in one
transaction, so a killed scanner restarts consistently.
"""
from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional

import txaio

from sisock import log, notify
from sisock.config import Config, ConfigError
from sisock.g3 import parallel, upgrade, watch
from sisock.g3.filescan import FileScan, fingerprint, read_file
from sisock.g3.index import FileRow, Index, IndexChanged, open_index
from sisock.g3.state import ArchiveState
from sisock.metrics import scanner as scanner_metrics

#: Seconds between progress lines during a long pass.
PROGRESS_EVERY = 10.0
#: Seconds between refreshes of the coarse summary tiers during a long pass (and one at its end).
REFRESH_EVERY = 60.0
#: Seconds before trying again after a failed pass (database away), at most SCAN_INTERVAL.
RETRY_AFTER = 30.0
#: A file whose last frame is cut off counts as still being written until it has not changed for
#: this many seconds, or a newer .g3 file exists in the tree; after that the cut is damage.
GROWTH_GRACE = 600.0


def walk(directory: Path, errors: Optional[List[str]] = None) -> Iterator[os.DirEntry]:
    """Every ``*.g3`` file under ``directory``, in path order; folders that cannot be
    listed are named in ``errors``."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        if errors is not None:
            errors.append(str(directory))
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from walk(Path(entry.path), errors)
        elif entry.name.endswith(".g3") and entry.is_file():
            yield entry


def _empty_folder(directory: Path) -> bool:
    """True when ``directory`` has no entry at all, as an unmounted mount point looks."""
    try:
        with os.scandir(directory) as entries:
            return next(entries, None) is None
    except OSError:
        return True


def _through_symlink(directory: Path, path: Path) -> bool:
    """True when a folder between ``directory`` and ``path`` is a symbolic link (``walk`` skips those)."""
    folder = path.parent
    while folder != directory and folder != folder.parent:
        if folder.is_symlink():
            return True
        folder = folder.parent
    return False


@dataclass
class PassStats:
    """What one pass did."""

    files: int = 0
    read: int = 0
    removed: int = 0
    bad: int = 0
    bytes: int = 0
    frames: int = 0
    seconds: float = 0.0


class Scanner:
    """Scans ``directory`` into ``index``."""

    def __init__(self, index: Index, directory: Path, stop: Optional[threading.Event] = None,
                 progress_every: float = PROGRESS_EVERY, growth_grace: float = GROWTH_GRACE,
                 summarise: bool = True) -> None:
        self.index = index
        self.summarise = summarise
        self.directory = directory
        self.stop = stop or threading.Event()
        self.progress_every = progress_every
        self.growth_grace = growth_grace
        txaio.use_twisted()
        self.log = log.logger()

    def scan_once(self) -> PassStats:
        """One pass over the tree."""
        stats = PassStats()
        began = last_report = last_refresh = time.monotonic()
        known = self.index.files()
        unlisted: List[str] = []
        entries = []
        for entry in walk(self.directory, unlisted):
            try:
                entries.append((entry, entry.stat()))
            except OSError:
                continue
        for folder in unlisted:
            self.log.warn("cannot list {folder}; its files stay in the index", folder=folder)
        newest = max((st.st_mtime_ns for _, st in entries), default=0)
        jobs, size = [], 0
        for entry, st in entries:
            stats.files += 1
            path, row = Path(entry.path), known.pop(entry.path, None)
            finished = st.st_mtime_ns < newest or time.time() - st.st_mtime > self.growth_grace
            try:
                start = self._start_offset(path, st, row, finished)
            except OSError as exc:  # gone or unreadable since the walk: the next pass sees it again
                self.log.warn("cannot read {path}: {error}", path=entry.path, error=exc.strerror or str(exc))
                continue
            if start is not None:
                jobs.append(((path, st, row, start), self._read_args(path, row, start, finished)))
                size += st.st_size - start
        for (path, st, row, start), scan in parallel.ordered(read_file, jobs, size):
            if self.stop.is_set():
                break
            try:
                if isinstance(scan, Exception):
                    raise scan
                self._store(path, st, row, start, scan, stats)
            except IndexChanged as exc:
                self.log.warn("{error}", error=str(exc))
            except OSError as exc:  # gone or unreadable since the walk: the next pass sees it again
                self.log.warn("cannot read {path}: {error}", path=str(path), error=exc.strerror or str(exc))
            if time.monotonic() - last_report >= self.progress_every:
                last_report = time.monotonic()
                self._progress(stats, len(jobs), last_report - began)
            if time.monotonic() - last_refresh >= REFRESH_EVERY:  # a long first pass serves coarse tiers early
                self.index.refresh_summaries()
                last_refresh = time.monotonic()
        if known and _empty_folder(self.directory):
            self.log.warn("{directory} is empty (not mounted?); keeping the index as it is",
                          directory=str(self.directory))
        elif not self.stop.is_set():
            # only files that are really gone: not those under a folder we could not list
            hidden = tuple(folder.rstrip(os.sep) + os.sep for folder in unlisted)
            for row in (r for r in known.values() if not r.path.startswith(hidden) and not os.path.lexists(r.path)):
                self.index.remove_file(row)
                scanner_metrics.REMOVED.inc()
                stats.removed += 1
                self.log.info("removed {path} from the index: the file is gone", path=row.path)
        self.index.refresh_summaries()
        stats.seconds = time.monotonic() - began
        return stats

    def scan_files(self, paths: List[str]) -> PassStats:
        """Scan just these files, as a pass would (the watcher's changed files); a file gone
        or not a ``.g3`` of the tree is left to the next pass."""
        stats = PassStats()
        known = self.index.files()
        for path in paths:
            try:
                st = os.stat(path)
                row = known.get(path)
                start = self._start_offset(Path(path), st, row, False)
                if start is not None:
                    scan = read_file(*self._read_args(Path(path), row, start, False))
                    self._store(Path(path), st, row, start, scan, stats)
            except IndexChanged as exc:
                self.log.warn("{error}", error=str(exc))
            except OSError:
                continue
            stats.files += 1
        return stats

    def _read_args(self, path: Path, row: Optional[FileRow], start: int, finished: bool) -> tuple:
        """:func:`read_file`'s arguments for reading ``path`` from ``start`` (a grown file keeps
        the providers its status frames named before)."""
        providers = self.index.providers_of(row.id) if start and row is not None else {}
        return path, start, providers, finished, self.summarise

    def _start_offset(self, path: Path, st: os.stat_result, row: Optional[FileRow], finished: bool) -> Optional[int]:
        """Where to read ``path`` from this pass, or None to leave it alone."""
        if row is None:
            return 0
        if not row.summarized:
            return 0  # indexed before summaries existed: read it all again to make them
        if row.size == st.st_size and row.mtime_ns == st.st_mtime_ns:
            # unchanged; a cut-off last frame of a file no longer written is recorded as damage now
            tail_pending = row.status == "ok" and row.scanned_to < row.size
            return row.scanned_to if tail_pending and finished else None
        if row.status == "ok" and st.st_size > row.size and row.scanned_to <= st.st_size and row.fingerprint:
            with open(path, "rb") as handle:
                if fingerprint(handle, row.scanned_to) == row.fingerprint:
                    return row.scanned_to  # the same file, grown: read on
        return 0  # shrunk, rewritten, or bad before: read it all again

    def _store(self, path: Path, st: os.stat_result, row: Optional[FileRow], start: int, scan: FileScan,
               stats: PassStats) -> None:
        self.index.store_file(path, st.st_size, st.st_mtime_ns, scan, row)
        scanner_metrics.stored(scan.scanned_to - start, len(scan.frames), scan.status == "bad")
        stats.read += 1
        stats.bytes += scan.scanned_to - start
        stats.frames += len(scan.frames)
        if scan.status == "bad":
            stats.bad += 1
            self.log.warn("bad file {path}: {error}; its other frames are served, and it is read again when it "
                          "changes", path=str(path), error=scan.error)

    def _progress(self, stats: PassStats, total: int, elapsed: float) -> None:
        self.log.info("scanning: {done}/{total} files read, {mb:.1f} MB ({rate:.1f} MB/s, {fps:.0f} frames/s)",
                      done=stats.read, total=total, mb=stats.bytes / 1e6, rate=stats.bytes / 1e6 / elapsed,
                      fps=stats.frames / elapsed)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true", help="do one pass and exit")


def main(args, config: Config) -> int:
    """Scan DATA_DIRECTORY every SCAN_INTERVAL seconds (or once) until SIGTERM."""
    log.start("g3-file-scanner", config.loglevel)
    logger = log.logger()
    if config.data_directory is None:
        raise ConfigError("DATA_DIRECTORY is not set: name the top of the .g3 tree")
    if not config.data_directory.is_dir():
        raise ConfigError(f"DATA_DIRECTORY={str(config.data_directory)!r}: not a directory")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    index = open_index(config)
    scanner = Scanner(index, config.data_directory, stop)
    moments = upgrade.Resummarise(scanner)
    changes = None if args.once else watch.follow(config.data_directory, logger)
    state = ArchiveState(index)

    def scan_changed(paths: List[str]) -> None:
        scanner.scan_files(paths)
        scanner_metrics.archive(*state.figures())
    schema_done = False
    while not stop.is_set():
        wait = config.scan_interval
        try:
            if not schema_done:
                logger.info("index: {what}", what=index.ensure_schema())
                schema_done = True
                notify.ready(f"index ready; first scan of {config.data_directory} running")
            stats = scanner.scan_once()
            scanner_metrics.pass_done(True, stats.seconds)
            scanner_metrics.archive(*state.figures())
            logger.info("pass done: {files} files, {read} read ({mb:.1f} MB, {frames} frames), {removed} removed, "
                        "{bad} bad, in {seconds:.2f} s", mb=stats.bytes / 1e6, **stats.__dict__)
            notify.status(f"last scan {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}: {stats.files} files, "
                          f"{stats.read} read, {stats.bad} bad, in {stats.seconds:.1f} s; next in {wait:.0f} s")
            while args.once and not stop.is_set() and moments.batch():  # one pass: the upgrade done too
                pass
        except Exception as exc:
            wait = min(wait, RETRY_AFTER)
            scanner_metrics.pass_done(False)
            logger.error("pass failed: {error}; next try in {wait:.0f} s", error=f"{type(exc).__name__}: {exc}",
                         wait=wait)
            notify.status(f"last scan failed ({type(exc).__name__}: {exc}); next try in {wait:.0f} s")
            if args.once:
                return 1
        if args.once:
            break
        if changes is None or not schema_done:
            watch.background(moments.batch if schema_done else None, wait, stop, logger)
        else:
            watch.scan_changes(changes, scan_changed, index.refresh_summaries, wait, stop, logger, moments.batch)
    index.close()
    return 0
