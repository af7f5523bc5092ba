"""``sisock g3-reader``: the data node ``g3_reader``, serving the indexed .g3 housekeeping archive.

Fields are named ``<provider description>.<field>``; the short form
``observatory.<agent>.<field>`` works too. The index comes from
``sisock g3-file-scanner`` (MySQL/MariaDB when SQL_HOST is set, else SQLite).
``get_data`` and ``get_buckets`` (from the summary tiers) run in worker processes
(:mod:`sisock.g3.workers`, G3_READER_PROCESSES).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from autobahn.wamp.exception import ApplicationError
from twisted.internet import reactor

from sisock import heartbeat
from sisock.config import Config
from sisock.buckets import Found
from sisock.datanode import ERROR_BAD_REQUEST, DataNodeServer
from sisock.g3 import warmup, workers
from sisock.g3.index import open_index
from sisock.g3.reader import Reader
from sisock.g3.state import ArchiveState
from sisock.metrics import reader as reader_metrics


#: Buckets a cut ``get_buckets`` leaves that are read in the node's process, not a worker's.
FEW_BUCKETS = 4


class G3ReaderServer(DataNodeServer):
    """Answers from the index and the files; reads only the frames a request overlaps."""

    name = "g3_reader"
    description = "Housekeeping archive (.g3 files)"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        processes = workers.processes_for(config)
        # get_fields stays here (one query); with workers this reader keeps no frames
        self.reader = Reader(open_index(config), config.g3_cache_mb if processes == 1 else 0)
        self.workers = workers.ReaderPool(config, processes) if processes > 1 else None
        reader_metrics.watch(processes, None if self.workers else self.reader.cache)
        self.state = ArchiveState(self.reader.index)
        self.reporter = heartbeat.Reporter(lambda: self._in_pool(self._archive_report))

    def _archive_report(self) -> Optional[dict]:
        """The archive's health report; none while the index cannot be read (the reader's own
        requests say why: no schema yet, the database away)."""
        try:
            return heartbeat.archive_report(*self.state.figures())
        except Exception:
            return None

    def on_join(self, session):
        self.reporter.start(session)

    def warm_up(self) -> None:
        """The reader's tables and the workers started and warmed (:mod:`sisock.g3.warmup`)."""
        warmup.warm(self.reader, panels=self.workers is None)
        if self.workers is not None:
            self.workers.wait_ready()

    def get_fields(self, start: float, end: float):
        return self.reader.fields(start, end)

    def get_data(self, fields: List[str], start: float, end: float, min_stride: Optional[float]):
        return self.get_data_cut(fields, start, end, min_stride, None)

    def get_data_cut(self, fields: List[str], start: float, end: float, min_stride: Optional[float],
                     cut: Optional[Tuple[float, float]]):
        """Both windows in one worker's task; none when the cut leaves nothing to read (sisock-http asking
        only for the revisions of a window it keeps whole): that answer needs the index alone."""
        if self.workers is None or (cut is not None and cut[0] <= start and cut[1] >= end):
            return workers.answer(self.reader, fields, start, end, min_stride, self.config.max_points, cut)
        return self.workers.answer(fields, start, end, min_stride, self.config.max_points, cut)

    def get_buckets(self, fields: List[str], edges: np.ndarray, columns: Sequence[str],
                    spans: Optional[np.ndarray] = None) -> Dict[str, Found]:
        """From the summary tiers, in constant time per span (:meth:`Reader.buckets`)."""
        if self.workers is None:
            return dict(self.reader.buckets(fields, edges, columns, spans))
        return dict(self.workers.buckets(fields, edges, columns, spans))

    def get_buckets_cut(self, fields: List[str], edges: np.ndarray, columns: Sequence[str],
                        cut: Tuple[int, int]) -> Dict[str, Found]:
        """Both sides of the cut in one worker's task, from the tier of the whole edges; in this process
        when they are a few buckets (a repeated panel's edges: the trip to a worker cost more than them)."""
        i, j = np.searchsorted(edges, cut)
        if self.workers is None or i + len(edges) - 1 - j <= FEW_BUCKETS:
            return dict(self.reader.buckets(fields, edges, columns, None, cut))
        return dict(self.workers.buckets(fields, edges, columns, None, cut))

    def finalized_until(self, fields: List[str]) -> Dict[str, float]:
        return self.reader.indexed_until(fields)

    def revisions(self, fields: List[str]) -> Dict[str, int]:
        return self.reader.revisions(fields)

    def procedures(self) -> Dict[str, Callable]:
        return {"get_coverage": self._get_coverage}

    def _get_coverage(self, fields, start, end):
        """``get_coverage(fields, start, end) -> {field: [[first, last], ...]}``: the time ranges in which
        the archive holds every sample of each known field (its provider's indexed frames), meeting
        ``[start, end]``; sisock-http leaves a live feed's samples inside them out of a joined series."""
        t0, t1 = self._times(start, end)
        names = [fields] if isinstance(fields, str) else fields
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ApplicationError(ERROR_BAD_REQUEST, f"{self.name}: fields must be a name or a list of names")
        d = self._in_pool(self.reader.coverage, names, t0, t1)
        d.addCallback(lambda found: {name: [list(span) for span in spans] for name, spans in found.items()})
        return d.addErrback(lambda f: self._fail(f"get_coverage({names}, {start}, {end})", f))

    def run(self) -> int:
        if self.workers is not None:
            reactor.addSystemEventTrigger("after", "shutdown", self.workers.close)  # type: ignore[arg-type]  # zope interface (mypy sees no self)
        return super().run()


def main(args, config: Config) -> int:
    """Serve the archive until SIGTERM."""
    return G3ReaderServer(config).run()
