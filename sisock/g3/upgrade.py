"""Schema version 7's upgrade, in the background: files whose summaries lack moments are read again.

Summary rows written before version 7 (blob format 2) have each bucket's count,
first, minimum, maximum and last, but not the sum and ``m2`` that InfluxQL's
mean, sum and stddev need. The scanner reads those files again from the start,
newest first (recent panels get their moments first), a batch at a time between
its other work, through the same store as a pass: each file's frames, fields and
summary rows are replaced in one transaction, so frames and the M4 rows serve
throughout, and a scanner killed part way goes on with the files still marked
(``files.moments = 0``) at its next start. Until a file is done, the reader
answers the moments of the buckets it covers from its frames.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, List, Set, Tuple

from sisock.g3 import parallel
from sisock.g3.filescan import read_file
from sisock.g3.index import FileRow, IndexChanged

if TYPE_CHECKING:  # the scanner runs the upgrade
    from sisock.g3.scanner import Scanner

#: Bytes and files one batch reads at most (in worker processes when it is large, as a pass).
BATCH_BYTES = 256 << 20
BATCH_FILES = 1000


class Resummarise:
    """Reads the files without moments again, a batch per :meth:`batch` call."""

    def __init__(self, scanner: "Scanner") -> None:
        self.scanner = scanner
        self.log = scanner.log
        self.skipped: Set[int] = set()  # files gone or changed meanwhile: the passes have them
        self.total = self.done = self.bytes = 0
        self.began = self.last_report = 0.0

    def pending(self) -> List[FileRow]:
        """The files whose summaries lack moments, newest first (the aggregator's paths sort by time)."""
        rows = [r for r in self.scanner.index.files().values()
                if not r.moments and r.summarized and r.id not in self.skipped]
        return sorted(rows, key=lambda r: r.path, reverse=True)

    def batch(self) -> bool:
        """Read one batch of files again; False once none is left (then it costs one query)."""
        rows = self.pending()
        if not rows:
            if self.total:
                self.log.info("moments: every file's summaries have their moments now ({n} files, {mb:.0f} MB read "
                              "again in {s:.0f} s)", n=self.done, mb=self.bytes / 1e6, s=time.monotonic() - self.began)
                self.total = 0
            return False
        if not self.total:
            self.total, self.began = len(rows), time.monotonic()
            self.last_report = self.began
            self.log.info("moments: {n} files ({mb:.0f} MB) to read again for their summaries' moments, newest "
                          "first, in the background", n=len(rows), mb=sum(r.size for r in rows) / 1e6)
        jobs: List[Tuple[tuple, tuple]] = []
        size = 0
        for row in rows:
            if len(jobs) >= BATCH_FILES or (jobs and size + row.size > BATCH_BYTES):
                break
            try:
                st = os.stat(row.path)
            except OSError:  # gone: the next pass takes it out of the index
                self.skipped.add(row.id)
                continue
            finished = time.time() - st.st_mtime > self.scanner.growth_grace
            path = Path(row.path)
            jobs.append(((path, st, row), (path, 0, {}, finished, True)))
            size += st.st_size
        for (path, st, row), scan in parallel.ordered(read_file, jobs, size):
            if self.scanner.stop.is_set():
                break
            try:
                if isinstance(scan, Exception):
                    raise scan
                self.scanner.index.store_file(path, st.st_size, st.st_mtime_ns, scan, row)
                self.done += 1
                self.bytes += scan.scanned_to
            except (IndexChanged, OSError) as exc:  # changed or gone since: the passes read it
                self.skipped.add(row.id)
                self.log.warn("moments: {path} left to the next pass: {error}", path=str(path),
                              error=getattr(exc, "strerror", None) or str(exc))
        self.scanner.index.refresh_summaries()
        self._progress()
        return True

    def _progress(self) -> None:
        now = time.monotonic()
        if now - self.last_report < self.scanner.progress_every:
            return
        self.last_report = now
        elapsed = now - self.began
        self.log.info("moments: {done}/{total} files read again, {mb:.0f} MB ({rate:.1f} MB/s)", done=self.done,
                      total=self.total, mb=self.bytes / 1e6, rate=self.bytes / 1e6 / max(elapsed, 1e-9))
