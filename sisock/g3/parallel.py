"""Reading many files on every core: a pass's files go to worker processes, results come back in order.

Decoding a frame holds Python's GIL (spt3g), so threads do not help a first scan
over a large archive; processes do. Only a pass with much to read starts them
(they cost about a second to start); an incremental pass reads in the scanner
itself. Results are taken in the order the files were given, so what the index
holds after each file is what a one-process scan would have written.
"""
from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Callable, Deque, Iterable, Iterator, Optional, Sequence, Tuple, TypeVar, Union

from sisock import lifeline

#: Bytes a pass must have to read before it is worth starting worker processes.
PARALLEL_FROM = 64 << 20
#: Files in flight per worker (keeps every worker busy while the scanner stores a result).
AHEAD = 2

#: Worker processes are fresh interpreters, never forks (:func:`spawn_pool`).
SPAWN = multiprocessing.get_context("spawn")

Job = TypeVar("Job")
Result = TypeVar("Result")


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def spawn_pool(processes: int, initializer: Optional[Callable[..., None]] = None,
               initargs: tuple = ()) -> ProcessPoolExecutor:
    """A pool of ``processes`` workers, each a fresh interpreter (spawn): never a fork of a
    process that may hold threads (the reactor's, a database driver's). Each worker ends as
    soon as this process ends, however it ends (:mod:`sisock.lifeline`), then runs
    ``initializer(*initargs)``."""
    return ProcessPoolExecutor(processes, mp_context=SPAWN,
                               initializer=_start_worker, initargs=(os.getpid(), initializer, initargs))


def _start_worker(parent: int, initializer: Optional[Callable[..., None]], initargs: tuple) -> None:
    lifeline.watch_parent(parent)
    if initializer is not None:
        initializer(*initargs)


def ordered(work: Callable[..., Result], jobs: Sequence[Tuple[Job, tuple]], size: int,
            processes: int = 0) -> Iterator[Tuple[Job, Union[Result, Exception]]]:
    """``(job, work(*args) or the exception it raised)`` for each ``(job, args)``, in order.

    Worker processes (``processes``, default every core) are used when there are at least two
    of them and ``size`` bytes to read reach :data:`PARALLEL_FROM`. Stopping the iteration
    early cancels what has not started.
    """
    processes = processes or cores()
    if processes < 2 or len(jobs) < 2 or size < PARALLEL_FROM:
        for job, args in jobs:
            yield job, _call(work, args)
        return
    pool = spawn_pool(processes)
    pending: Deque[Tuple[Job, Future]] = deque()
    queued: Iterable[Tuple[Job, tuple]] = iter(jobs)
    try:
        for job, args in queued:
            pending.append((job, pool.submit(work, *args)))
            if len(pending) >= processes * AHEAD:
                break
        while pending:
            job, future = pending.popleft()
            for more, args in queued:  # keep the workers fed
                pending.append((more, pool.submit(work, *args)))
                break
            try:
                yield job, future.result()
            except Exception as exc:  # the worker's exception, as a serial read would have raised it
                yield job, exc
    finally:
        # the workers exit in the background (a tenth of a second) while the caller goes on
        pool.shutdown(wait=False, cancel_futures=True)


def _call(work: Callable[..., Result], args: tuple) -> Union[Result, Exception]:
    try:
        return work(*args)
    except Exception as exc:
        return exc
