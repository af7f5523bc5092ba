"""The g3-reader's ``get_data`` and ``get_buckets`` answered in worker processes, so that one reader uses every core.

Reading frames and merging summary rows hold Python's GIL: in one process the
g3-reader serves at most one core's worth of panels however many cores its host
has (measured: the limit of a 50-client load). Each worker here has its own
:class:`~sisock.g3.reader.Reader` (its own index connection, its share of
``G3_CACHE_MB``, its own decoded rows); a request goes to a free worker and its
answer comes back as numpy arrays. A worker that dies costs only the requests
it held: the pool is made anew for the next one.
"""
from __future__ import annotations

import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from sisock import log
from sisock.buckets import Found
from sisock.config import Config
from sisock.datanode import data_result
from sisock.g3 import parallel
from sisock.g3.index import open_index
from sisock.g3.reader import Reader
from sisock.metrics import reader as reader_metrics
from sisock.metrics.reader import CacheFigures

#: Workers when G3_READER_PROCESSES is 0: one per core, at most this many.
MOST_AUTO = 4

_reader: Optional[Reader] = None  # a worker's own reader


def processes_for(config: Config) -> int:
    """How many worker processes ``config`` asks for (1: none, the reader answers itself)."""
    return config.g3_reader_processes or min(parallel.cores(), MOST_AUTO)


def answer(reader: Reader, names: List[str], start: float, end: float, min_stride: Optional[float],
           max_points: int) -> dict:
    """``get_data``'s answer before the base class finishes it: each timeline's ``finalized_until``
    is the newest time the index holds for its provider (taken before reading, so nothing after
    it is missing from the answer's sources); a known field without samples in the window comes
    as an empty timeline carrying it."""
    until = reader.indexed_until(names)
    result = data_result(reader.data(names, start, end, min_stride, max_points))
    for timeline in result["timeline"].values():
        marks = [until[f] for f in timeline["fields"] if f in until]
        timeline["finalized_until"] = min(marks) if marks else None
    for name in sorted(set(until) - set(result["data"])):
        result["timeline"][name] = {"t": [], "finalized_until": until[name], "fields": [name]}
        result["data"][name] = []
    return result


def _start(config: Config, cache_mb: int) -> None:
    """A worker's beginning: its log lines go where the reader's go, as the reader's."""
    global _reader
    log.start("g3-reader", config.loglevel)
    _reader = Reader(open_index(config), cache_mb)


def _answer(*args) -> Tuple[dict, CacheFigures]:
    """The answer, and this worker's cache figures for the parent's metrics."""
    assert _reader is not None  # _start made it: the pool's initializer
    return answer(_reader, *args), reader_metrics.figures_of(_reader.cache)


def _buckets(*args) -> Tuple[Dict[str, Found], CacheFigures]:
    """The buckets, and this worker's cache figures for the parent's metrics."""
    assert _reader is not None  # _start made it: the pool's initializer
    return _reader.buckets(*args), reader_metrics.figures_of(_reader.cache)


def _ready() -> bool:
    return _reader is not None


class ReaderPool:
    """Worker processes answering :func:`answer`, made anew when one dies."""

    def __init__(self, config: Config, processes: int) -> None:
        self.config = config
        self.processes = processes
        self.log = log.logger()
        self._lock = threading.Lock()
        self._pool = self._make()

    def _make(self) -> ProcessPoolExecutor:
        pool = parallel.spawn_pool(self.processes, initializer=_start,
                                   initargs=(self.config, max(1, self.config.g3_cache_mb // self.processes)))
        for _ in range(self.processes):  # start them now, not on the first panel
            pool.submit(_ready)
        return pool

    def answer(self, names: List[str], start: float, end: float, min_stride: Optional[float],
               max_points: int) -> dict:
        """:func:`answer` in a worker (blocking: called from the node's thread pool)."""
        return self._in_worker(_answer, names, start, end, min_stride, max_points)

    def buckets(self, names: List[str], edges: np.ndarray, columns: Sequence[str],
                spans: Optional[np.ndarray]) -> Dict[str, Found]:
        """:meth:`Reader.buckets` in a worker (blocking: called from the node's thread pool)."""
        return self._in_worker(_buckets, names, edges, columns, spans)

    def _in_worker(self, work: Callable, *args):
        """``work(*args)``'s result in a worker (its cache figures go to the metrics). A request whose
        worker died is asked once more of new workers: a worker killed for its own reasons costs nothing,
        one that the request itself kills costs only that request."""
        for _attempt in (1, 2):
            pool = self._pool
            try:
                result, figures = pool.submit(work, *args).result()
                reader_metrics.worker_figures(figures)
                return result
            except BrokenProcessPool:
                with self._lock:
                    if self._pool is pool:
                        reader_metrics.restarted()
                        self.log.error("a g3-reader worker process died; starting {n} new ones", n=self.processes)
                        self._pool = self._make()
        raise RuntimeError("reader worker processes died twice while answering this request")

    def close(self) -> None:
        """Stop the workers (what they hold is dropped)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
