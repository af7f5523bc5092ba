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

import math
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from sisock import collector, log
from sisock.buckets import Found
from sisock.config import Config
from sisock.datanode import concatenated, data_result
from sisock.decimate import choose_step, on_grid
from sisock.g3 import parallel, warmup
from sisock.g3.index import open_index
from sisock.g3.reader import Reader
from sisock.metrics import reader as reader_metrics
from sisock.metrics.reader import CacheFigures

#: Workers when G3_READER_PROCESSES is 0: one per core, at most this many.
MOST_AUTO = 4
#: Seconds the workers may take to start and warm up before the reader serves without waiting.
START_TIMEOUT = 300.0

_reader: Optional[Reader] = None  # a worker's own reader
_started: Any = None  # a worker's barrier: passed once every worker has warmed up


def processes_for(config: Config) -> int:
    """How many worker processes ``config`` asks for (1: none, the reader answers itself)."""
    return config.g3_reader_processes or min(parallel.cores(), MOST_AUTO)


def answer(reader: Reader, names: List[str], start: float, end: float, min_stride: Optional[float],
           max_points: int, cut: Optional[Tuple[float, float]] = None) -> dict:
    """``get_data``'s answer before the base class finishes it: each timeline's ``finalized_until``
    is the newest time the index holds for its provider (taken before reading, so nothing after
    it is missing from the answer's sources); a known field without samples in the window comes
    as an empty timeline carrying it. An answer reduced at exactly ``min_stride`` (on the grid)
    also carries each timeline's ``revision``, its provider's (:mod:`sisock.g3.revisions`), taken
    before reading too: its slots that end by ``finalized_until`` stay the same while it does.
    With ``cut``, the answer over ``[start, cut[0])`` and ``[cut[1], end)`` (DataNodeServer.get_data_cut)."""
    until = reader.indexed_until(names)
    step = choose_step(start, end, min_stride, max_points or None)
    kept = reader.revisions(names) if min_stride and 0 < step < math.inf and step == on_grid(min_stride) else {}
    windows = [(start, end)] if cut is None else [(start, cut[0]), (cut[1], end)]
    result = concatenated([data_result(reader.data(names, a, b, min_stride, max_points))
                           for a, b in windows if b > a or cut is None])
    for name in sorted(set(until) - set(result["data"])):
        result["timeline"][name] = {"t": [], "fields": [name]}
        result["data"][name] = []
    for timeline in result["timeline"].values():
        marks = [until[f] for f in timeline["fields"] if f in until]
        timeline["finalized_until"] = min(marks) if marks else None
        revisions = {kept.get(f) for f in timeline["fields"]}
        if len(revisions) == 1 and None not in revisions:
            timeline["revision"] = revisions.pop()
    return result


def _start(config: Config, cache_mb: int, started) -> None:
    """A worker's beginning: its log lines go where the reader's go, as the reader's; then its
    warm-up (:mod:`sisock.g3.warmup`), and what it made kept out of later garbage collections."""
    global _reader, _started
    log.start("g3-reader", config.loglevel)
    _reader, _started = Reader(open_index(config), cache_mb), started
    try:
        warmup.warm(_reader)
    except Exception as exc:  # an index not reachable yet: its requests say so (a failed start would break the pool)
        log.logger().info("a worker's warm-up not done ({error})", error=str(exc) or type(exc).__name__)
    collector.freeze_start_up()


def _answer(*args) -> Tuple[dict, CacheFigures]:
    """The answer, and this worker's cache figures for the parent's metrics."""
    assert _reader is not None  # _start made it: the pool's initializer
    return answer(_reader, *args), reader_metrics.figures_of(_reader.cache)


def _buckets(*args) -> Tuple[Dict[str, Found], CacheFigures]:
    """The buckets, and this worker's cache figures for the parent's metrics."""
    assert _reader is not None  # _start made it: the pool's initializer
    return _reader.buckets(*args), reader_metrics.figures_of(_reader.cache)


def _ready() -> bool:
    """True once every worker has warmed up: each waits at the barrier, so one task per worker is needed."""
    _started.wait(START_TIMEOUT)
    return True


def shares(names: List[str], parts: int) -> List[List[str]]:
    """``names`` in at most ``parts`` shares of about the same size, the names of one provider (a full
    name less its last part) in the same share, as they read the same frames."""
    by_provider: Dict[str, List[str]] = {}
    for name in names:
        by_provider.setdefault(name.rpartition(".")[0], []).append(name)
    out: List[List[str]] = [[] for _ in range(max(1, min(parts, len(by_provider))))]
    for group in sorted(by_provider.values(), key=len, reverse=True):
        min(out, key=len).extend(group)
    return out


class ReaderPool:
    """Worker processes answering :func:`answer`, made anew when one dies."""

    def __init__(self, config: Config, processes: int) -> None:
        self.config = config
        self.processes = processes
        self.log = log.logger()
        self._lock = threading.Lock()
        self._pool = self._make()

    def _make(self) -> ProcessPoolExecutor:
        started = parallel.SPAWN.Barrier(self.processes)
        pool = parallel.spawn_pool(self.processes, initializer=_start,
                                   initargs=(self.config, max(1, self.config.g3_cache_mb // self.processes), started))
        # start them now, not on the first panel: one task each, held until all have warmed up
        self._warming: List[Future] = [pool.submit(_ready) for _ in range(self.processes)]
        return pool

    def wait_ready(self) -> None:
        """Block until every worker has started and warmed up (or failed to: it is then made anew
        on the first request)."""
        for future in self._warming:
            try:
                future.result(START_TIMEOUT)
            except Exception as exc:
                self.log.warn("the g3-reader workers did not all warm up ({error}); serving anyway",
                              error=str(exc) or type(exc).__name__)
                return

    def answer(self, names: List[str], start: float, end: float, min_stride: Optional[float],
               max_points: int, cut: Optional[Tuple[float, float]] = None) -> dict:
        """:func:`answer` in a worker (blocking: called from the node's thread pool)."""
        return self._in_worker(_answer, names, start, end, min_stride, max_points, cut)

    def buckets(self, names: List[str], edges: np.ndarray, columns: Sequence[str],
                spans: Optional[np.ndarray], cut: Optional[Tuple[int, int]] = None) -> Dict[str, Found]:
        """:meth:`Reader.buckets` in the workers (blocking: called from the node's thread pool), the names
        shared among them by provider: a panel's statements come as one request (sisock-http asks for a
        query's fields together), and its cold reads then still use every core."""
        found: Dict[str, Found] = {}
        for part in self._in_workers(_buckets, [(share, edges, columns, spans, cut)
                                                 for share in shares(names, self.processes)]):
            found.update(part)
        return found

    def _in_worker(self, work: Callable, *args):
        """``work(*args)``'s result in a worker (see :meth:`_in_workers`)."""
        return self._in_workers(work, [args])[0]

    def _in_workers(self, work: Callable, calls: List[tuple]) -> list:
        """``work(*args)``'s result for each ``args`` of ``calls``, all in the workers at once (their cache
        figures go to the metrics). Requests whose worker died are asked once more of new workers: a worker
        killed for its own reasons costs nothing, one that the request itself kills costs only that request."""
        for _attempt in (1, 2):
            pool = self._pool
            try:
                futures = [pool.submit(work, *args) for args in calls]
                results = []
                for future in futures:
                    result, figures = future.result()
                    reader_metrics.worker_figures(figures)
                    results.append(result)
                return results
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
