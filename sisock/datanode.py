"""The DataNodeServer base: what every data node server shares.

A subclass sets ``name`` and ``description`` and implements ``get_fields`` and
``get_data`` as plain blocking functions; they run in the reactor's thread
pool with absolute UNIX times. The base registers the two WAMP procedures,
adds the node to the hub (again whenever the hub or the router restarts),
decimates with ``min_stride``/``MAX_POINTS``, turns a subclass's exception into
a readable WAMP error, and subtracts the node on a clean shutdown.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import RegisterOptions
from twisted.internet import defer, reactor, task, threads
from twisted.python.threadpool import ThreadPool

from sisock import buckets, collector, log, notify, pieces, wamp
from sisock.config import Config
from sisock.decimate import decimate_columns
from sisock.metrics import node as node_metrics

#: Error URIs a data node server raises.
ERROR_BAD_REQUEST = f"{wamp.BASE_URI}.error.bad_request"
ERROR_FAILED = f"{wamp.BASE_URI}.error.data_node_failed"

ERROR_BUSY = f"{wamp.BASE_URI}.error.busy"
ERROR_TOO_LARGE = f"{wamp.BASE_URI}.error.too_large"

#: Bytes an answer may take as one message, for a caller that takes no pieces: well within the
#: router's limit, so that no request can get a data node's session dropped.
ONE_MESSAGE = wamp.MAX_MESSAGE // 2
#: Seconds either side of an excluded range that still count as inside it: the same sample
#: stamped by the archive (10 ns ticks) and by a live feed (float seconds) differ by less.
EXCLUDE_SLACK = 1e-6

#: Seconds between attempts to add the node while the hub is away.
ADD_RETRY = 2.0
#: Seconds a rejoining server waits for the router to drop its own old session.
REJOIN_GRACE = 60.0
#: Worker threads of a data node, and requests that may wait for one.
WORKERS = 4
MAX_QUEUED = 64

Fields = Dict[str, dict]
Timelines = Dict[str, dict]


def absolute_time(value: float, now: Optional[float] = None) -> float:
    """docs/design.md: a time > 0 is UNIX seconds; 0 or less is that many seconds before now."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"time {value!r} is not finite")
    return value if value > 0 else (time.time() if now is None else now) + value


def field_info(timeline: str, description: str = "", units: str = "", type_: str = "number",
               value_type: Optional[str] = None) -> dict:
    """One entry of the ``fields`` dict that ``get_fields`` returns (``value_type``: InfluxDB's field
    type, ``float``, ``integer``, ``string`` or ``boolean``, where the node knows it)."""
    info = {"description": description, "timeline": timeline, "type": type_, "units": units}
    if value_type is not None:
        info["value_type"] = value_type
    return info


def data_result(timelines: Mapping[str, Tuple[Iterable[float], Mapping[str, Iterable]]],
                finalized_until: Optional[float] = None) -> dict:
    """Build a ``get_data`` answer from ``{timeline: (t, {field: values})}``."""
    answer: Dict[str, Dict[str, Any]] = {"data": {}, "timeline": {}}
    for name, (t, columns) in timelines.items():
        answer["timeline"][name] = {"t": t, "finalized_until": finalized_until, "fields": list(columns)}
        answer["data"].update(columns)
    return answer


def plain_list(values) -> list:
    """A JSON-safe list: numpy arrays to lists, NaN and infinities to None."""
    array = np.asarray(values)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        out = array.astype(object)
        out[~np.isfinite(array)] = None
        return out.tolist()
    return array.tolist()


def exclusion(ranges) -> Optional[np.ndarray]:
    """``get_data``'s ``exclude`` argument as an (n, 2) array of sorted ``[first, last]`` ranges
    (None for none); ValueError if it is not a list of pairs of numbers."""
    if ranges is None:
        return None
    spans = np.asarray(ranges, dtype=float).reshape(-1, 2)
    if not np.isfinite(spans).all():
        raise ValueError("exclude must hold finite numbers")
    return spans[np.argsort(spans[:, 0], kind="stable")]


def outside(t: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """A mask of the times ``t`` outside every range of ``spans`` (:func:`exclusion`'s)."""
    t = np.asarray(t, dtype=float)
    if not len(spans) or not len(t):
        return np.ones(len(t), dtype=bool)
    # the last range starting at or before each time; ranges may overlap, so use the running end
    ends = np.maximum.accumulate(spans[:, 1])
    k = np.searchsorted(spans[:, 0] - EXCLUDE_SLACK, t, side="right") - 1
    inside = (k >= 0) & (t <= ends[np.maximum(k, 0)] + EXCLUDE_SLACK)
    return ~inside


def drop_excluded(answer: dict, spans: np.ndarray) -> dict:
    """``answer`` (a raw ``get_data`` answer) without the samples inside ``spans`` (and without
    revisions: what it holds is no longer all that its sources hold)."""
    data = answer.get("data", {})
    for timeline in answer.get("timeline", {}).values():
        timeline.pop("revision", None)
        keep = outside(timeline["t"], spans)
        if keep.all():
            continue
        timeline["t"] = np.asarray(timeline["t"], dtype=float)[keep]
        for name in timeline.get("fields", []):
            if name in data:
                data[name] = np.asarray(data[name])[keep]
    return answer


def concatenated(parts: List[dict]) -> dict:
    """``get_data`` answers over consecutive windows as one: each timeline's samples of every part in
    order (values keep their types), the last part's ``finalized_until``, and a ``revision`` only
    where every part gives the timeline the same one."""
    out: Dict[str, Dict[str, Any]] = {"data": {}, "timeline": {}}
    pieces: Dict[str, List[dict]] = {}
    for part in parts:
        for name, timeline in part.get("timeline", {}).items():
            pieces.setdefault(name, []).append(timeline)
    for name, timelines in pieces.items():
        fields = list(dict.fromkeys(f for tl in timelines for f in tl.get("fields", [])))
        t = np.concatenate([np.asarray(tl["t"], dtype=float) for tl in timelines])
        entry: Dict[str, Any] = {"t": t, "finalized_until": timelines[-1].get("finalized_until"), "fields": fields}
        revisions = {tl.get("revision") for tl in timelines}
        if len(timelines) == len(parts) and len(revisions) == 1 and None not in revisions:
            entry["revision"] = revisions.pop()
        out["timeline"][name] = entry
        for f in fields:
            values = [np.asarray(p["data"][f]) for p in parts if f in p.get("data", {}) and len(p["data"][f])]
            out["data"][f] = np.concatenate(values) if values else np.empty(0)
    return out


def finish(answer: dict, min_stride: Optional[float], max_points: int, window: Tuple[float, float]) -> dict:
    """Decimate each timeline of a ``get_data`` answer over the request's ``window`` and make it
    serialisable (an answer a subclass already reduced on the same grid is left as it is)."""
    data: Dict[str, list] = {}
    timelines: Dict[str, dict] = {}
    for name, timeline in answer.get("timeline", {}).items():
        names = [f for f in timeline.get("fields", []) if f in answer.get("data", {})]
        t, columns = decimate_columns(timeline["t"], {f: answer["data"][f] for f in names},
                                      min_stride, max_points or None, window)
        timelines[name] = {"t": plain_list(t), "finalized_until": timeline.get("finalized_until"), "fields": names}
        if timeline.get("revision") is not None:
            timelines[name]["revision"] = timeline["revision"]
        data.update({f: plain_list(v) for f, v in columns.items()})
    return {"data": data, "timeline": timelines}


class DataNodeServer:
    """Base of every data node server; see the module docstring."""

    #: Data node name (what Grafana shows before ``::``).
    name: str = ""
    description: str = ""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.log = log.logger()
        self.session = None
        self._add_loop: Optional[task.LoopingCall] = None
        self._waiting_for_hub = False
        self._joined_once = False
        self._added_once = False
        self.pool = ThreadPool(minthreads=0, maxthreads=WORKERS, name=f"{self.name}-workers")
        self._failures = log.Throttle(60.0)
        self._warm: Optional[List[defer.Deferred]] = []  # who waits for the warm-up; None once it is done

    # -- what subclasses implement (blocking; run in a thread) ---------------
    def get_fields(self, start: float, end: float) -> Tuple[Fields, Timelines]:
        """Fields with samples in ``[start, end)``, and their timelines."""
        raise NotImplementedError

    def get_data(self, fields: List[str], start: float, end: float, min_stride: Optional[float]) -> dict:
        """Samples of ``fields`` in ``[start, end)`` (see :func:`data_result`).

        The base decimates afterwards; a subclass may reduce earlier with
        ``min_stride`` to save work. Unknown fields are left out.
        """
        raise NotImplementedError

    def get_buckets(self, fields: List[str], edges: np.ndarray, columns: Sequence[str],
                    spans: Optional[np.ndarray] = None) -> Dict[str, buckets.Found]:
        """Per-bucket aggregates of ``fields`` on ``edges`` (whole microseconds; bucket k is
        ``[edges[k], edges[k+1])``), leaving out the samples in ``spans`` (:func:`exclusion`'s):
        ``{field: Slots or TextBuckets}`` (:mod:`sisock.buckets`). This default computes them
        from every sample ``get_data`` gives; a node with summaries (the g3 reader) overrides it."""
        t0, t1 = float(edges[0]) / 1e6, float(edges[-1]) / 1e6
        answer = self.get_data(fields, t0, t1, None)
        if spans is not None:
            answer = drop_excluded(answer, spans)
        data = answer.get("data", {})
        found: Dict[str, buckets.Found] = {}
        for timeline in answer.get("timeline", {}).values():
            t_us = buckets.microseconds(timeline["t"])
            for name in timeline.get("fields", []):
                if name in data and name in fields:
                    found[name] = buckets.of_samples(t_us, np.asarray(data[name]), edges)
        return found

    def finalized_until(self, fields: List[str]) -> Dict[str, float]:
        """Each of ``fields``' time up to which the node holds every sample (``get_buckets``'
        ``finalized_until``; blocking, taken before the buckets are read); none by default."""
        return {}

    def revisions(self, fields: List[str]) -> Dict[str, int]:
        """Each of ``fields``' revision (``get_buckets``' ``revisions``: while it stays the same, a bucket
        that ends by ``finalized_until`` never changes; taken before the buckets are read); none by default."""
        return {}

    def get_buckets_cut(self, fields: List[str], edges: np.ndarray, columns: Sequence[str],
                        cut: Tuple[int, int]) -> Dict[str, buckets.Found]:
        """:meth:`get_buckets` without the buckets inside ``[cut[0], cut[1])`` (two of ``edges``): the
        buckets before and after, each part asked on its own edges."""
        return buckets.around_cut(edges, cut, lambda sub: self.get_buckets(fields, sub, columns))

    def get_data_cut(self, fields: List[str], start: float, end: float, min_stride: Optional[float],
                     cut: Tuple[float, float]) -> dict:
        """:meth:`get_data` over ``[start, cut[0])`` and ``[cut[1], end)`` as one answer
        (:func:`concatenated`); a subclass may read both at once."""
        return concatenated([self.get_data(fields, start, cut[0], min_stride),
                             self.get_data(fields, cut[1], end, min_stride)])

    def warm_up(self) -> None:
        """Blocking, once at start in a worker thread, before the node registers its procedures and
        adds itself to the hub (so before systemd hears READY=1): whatever makes its first answer as
        fast as later ones (worker processes, caches, tables). Nothing by default."""

    def on_join(self, session) -> Optional[defer.Deferred]:
        """Called in the reactor after each (re)join; subscribe to feeds here."""
        return None

    def components(self) -> list:
        """The WAMP components this server runs (a data-feed may add the OCS port)."""
        return [self.component]

    def procedures(self) -> Dict[str, Callable]:
        """Procedures this server registers besides the two of every data node, by name
        (``consumer.<node>.<name>``); handlers run in the reactor."""
        return {}

    # -- WAMP procedures -------------------------------------------------------
    def _times(self, start, end) -> Tuple[float, float]:
        try:
            now = time.time()
            return absolute_time(start, now), absolute_time(end, now)
        except (TypeError, ValueError) as exc:
            raise ApplicationError(ERROR_BAD_REQUEST, f"{self.name}: bad time: {exc}") from None

    def _fail(self, call: str, failure):
        if failure.check(ApplicationError):
            return failure
        message = f"{self.name}: {call} failed: {failure.getErrorMessage()}"
        # one line a minute per cause: a broken index fails every request the same way
        held = self._failures.allow(f"{failure.type.__name__}: {failure.getErrorMessage()}")
        if held >= 0:
            self.log.error("{text}{more}", text=message, more=f" ({held} more since the last such line)" if held
                           else "", log_failure=failure)
        raise ApplicationError(ERROR_FAILED, message)

    def _in_pool(self, fn: Callable, *args) -> defer.Deferred:
        """Run blocking work in this node's own pool; refuse when too much waits, and drop
        work that waited longer than its caller (HTTP_TIMEOUT) would."""
        if self.pool.q.qsize() >= MAX_QUEUED:
            node_metrics.busy(self.name)
            raise ApplicationError(ERROR_BUSY, f"{self.name}: {MAX_QUEUED} requests already waiting; try later")
        queued = time.monotonic()

        def guarded():
            waited = time.monotonic() - queued
            if waited > self.config.http_timeout:
                raise ApplicationError(ERROR_BUSY, f"{self.name}: request dropped after waiting {waited:.0f} s")
            return fn(*args)

        return threads.deferToThreadPool(reactor, self.pool, guarded)

    def _get_fields(self, start, end):
        t0, t1 = self._times(start, end)
        d = self._in_pool(self.get_fields, t0, t1)
        d.addCallback(lambda result: [result[0], result[1]])
        d.addErrback(lambda f: self._fail(f"get_fields({start}, {end})", f))
        return node_metrics.observe(d, self.name, "get_fields")

    def _get_data(self, field: Union[str, List[str]], start, end, min_stride=None, exclude=None, details=None,
                  cut=None):
        """``get_data``, plus an optional ``exclude``: ranges ``[first, last]`` whose samples are left
        out before decimation (sisock-http joins a live feed to the archive with it); and an optional
        keyword ``cut=[a, b]``: the answer over ``[start, a)`` and ``[b, end)`` only, each reduced on
        its own (with ``a`` and ``b`` multiples of the slot width: the whole window's answer without its
        slots ``[a, b)``, which sisock-http keeps). A large answer goes in pieces to a caller that takes
        progressive results (:mod:`sisock.pieces`)."""
        t0, t1 = self._times(start, end)
        names = [field] if isinstance(field, str) else field
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ApplicationError(ERROR_BAD_REQUEST, f"{self.name}: field must be a name or a list of names")
        if min_stride is not None:
            try:
                min_stride = float(min_stride)
            except (TypeError, ValueError):
                min_stride = math.nan
            if not (math.isfinite(min_stride) and min_stride >= 0):
                raise ApplicationError(ERROR_BAD_REQUEST, f"{self.name}: min_stride must be a number >= 0")
        try:
            spans = exclusion(exclude)
        except (TypeError, ValueError) as exc:
            raise ApplicationError(ERROR_BAD_REQUEST, f"{self.name}: exclude must be a list of [first, last] "
                                   f"pairs ({exc})") from None
        middle = self._cut(cut, t0, t1, spans)
        progress = getattr(details, "progress", None)

        def work():
            if middle is not None:
                answer = self.get_data_cut(names, t0, t1, min_stride, middle)
            elif spans is None:
                answer = self.get_data(names, t0, t1, min_stride)
            else:  # every sample first (a subclass may reduce early), then the ranges left out
                answer = drop_excluded(self.get_data(names, t0, t1, None), spans)
            return self._in_pieces(finish(answer, min_stride, self.config.max_points, (t0, t1)), progress)

        d = self._in_pool(work)
        d.addCallback(lambda parts: self._send(parts, progress))
        d.addErrback(lambda f: self._fail(f"get_data({names}, {start}, {end})", f))
        return node_metrics.observe(d, self.name, "get_data")

    def _cut(self, cut, t0: float, t1: float, spans) -> Optional[Tuple[float, float]]:
        """``get_data``'s ``cut`` checked: two numbers ``a <= b`` within the window (times as ``start``'s)."""
        if cut is None:
            return None
        try:
            a, b = (absolute_time(x) for x in cut)
        except (TypeError, ValueError):
            raise ApplicationError(ERROR_BAD_REQUEST, f"{self.name}: cut must be [a, b], two times") from None
        if not t0 <= a <= b <= t1 or spans is not None:
            raise ApplicationError(ERROR_BAD_REQUEST, f"{self.name}: cut must lie within the window, a <= b, "
                                   "and come without exclude")
        return a, b

    def _get_buckets(self, fields, edges, columns=None, exclude=None, details=None, cut=None):
        """``get_buckets(fields, edges, columns=None, exclude=None)``: per-bucket aggregates
        (:mod:`sisock.buckets`), in pieces to a caller that takes them, as ``get_data``; with the
        keyword ``cut=[a, b]`` (two of the edges), without the buckets between them (sisock-http
        keeps those)."""
        names = [fields] if isinstance(fields, str) else fields
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ApplicationError(ERROR_BAD_REQUEST, f"{self.name}: fields must be a name or a list of names")
        try:
            grid, wanted, spans = buckets.edges_of(edges), buckets.columns_of(columns), exclusion(exclude)
            middle = None if cut is None else buckets.cut_of(cut, grid, spans is not None)
        except (buckets.BadBuckets, TypeError, ValueError) as exc:
            raise ApplicationError(ERROR_BAD_REQUEST, f"{self.name}: get_buckets: {exc}") from None
        progress = getattr(details, "progress", None)

        def work():
            return self._in_pieces(self.bucket_answer(names, grid, wanted, spans, middle), progress, buckets.split)

        d = self._in_pool(work)
        d.addCallback(lambda parts: self._send(parts, progress))
        return d.addErrback(lambda f: self._fail(f"get_buckets({names}, {len(grid) - 1} buckets)", f))

    def bucket_answer(self, names: List[str], edges: np.ndarray, columns: Sequence[str], spans: Optional[np.ndarray],
                      cut: Optional[Tuple[int, int]]) -> dict:
        """``get_buckets``' whole answer (blocking): ``finalized_until`` and the revisions, taken before
        the buckets are read, and the buckets, without the cut's when there is one."""
        until, revisions = self.finalized_until(names), self.revisions(names)
        if cut is None:
            found = self.get_buckets(names, edges, columns, spans)
        else:
            found = self.get_buckets_cut(names, edges, columns, cut)
        return buckets.answer(found, edges, columns, until, revisions)

    def _in_pieces(self, answer: dict, progress, split: Callable[[dict], List[dict]] = pieces.split) -> List[dict]:
        """The answer as pieces for a caller that takes them; else whole, if it fits one message."""
        if progress is not None:
            return split(answer)
        size = pieces.encoded_size(answer)
        if size > ONE_MESSAGE:
            raise ApplicationError(ERROR_TOO_LARGE, f"{self.name}: the answer takes {size / 1e6:.0f} MB, more than "
                                   f"one message may ({ONE_MESSAGE / 1e6:.0f} MB); ask for fewer samples (a "
                                   "min_stride, fewer fields or a shorter window), or take progressive results")
        return [answer]

    @staticmethod
    def _send(parts: List[dict], progress) -> dict:
        """In the reactor: every piece but the last as a progressive result, the last as the result."""
        for part in parts[:-1]:
            progress(part)
        return parts[-1]

    # -- joining the hub -------------------------------------------------------
    def _start_warm_up(self) -> None:
        """In the reactor: run :meth:`warm_up` in the node's pool; joining waits for it."""
        notify.status(f"{self.name}: warming up")
        began = time.monotonic()

        def done(result) -> None:
            if result is not None:  # a failure: serve anyway (requests then say what fails, as warnings)
                self.log.info("warm-up not done ({error}); serving anyway", error=result.getErrorMessage())
            elif type(self).warm_up is not DataNodeServer.warm_up:  # a node with nothing to warm says nothing
                self.log.info("warmed up in {s:.2f} s", s=time.monotonic() - began)
            waiting, self._warm = self._warm or [], None
            for d in waiting:
                d.callback(None)

        threads.deferToThreadPool(reactor, self.pool, self.warm_up).addCallbacks(lambda _: done(None), done)

    def _warmed(self) -> defer.Deferred:
        """Fires once the warm-up is done (at once if it is)."""
        if self._warm is None:
            return defer.succeed(None)
        d: defer.Deferred = defer.Deferred()
        self._warm.append(d)
        return d

    @defer.inlineCallbacks
    def _join(self, session, details):
        self.session = session
        yield self._warmed()
        if not session.is_attached():
            return
        deadline = time.monotonic() + REJOIN_GRACE
        while True:
            try:
                yield self._register(session)
                break
            except ApplicationError as exc:
                if exc.error != "wamp.error.procedure_already_exists":
                    raise
            # At first start the name belongs to another server: a configuration error.
            # After a reconnect it is most likely our own old session, which the router
            # has not timed out yet: wait for it.
            if not self._joined_once or time.monotonic() > deadline:
                self.name_taken()
                return
            self.log.warn("data node name {name} still held by an older session; retrying", name=self.name)
            yield task.deferLater(reactor, ADD_RETRY, lambda: None)
            if not session.is_attached():
                return
        self._joined_once = True
        yield session.subscribe(lambda *a, **kw: self._add(), wamp.TOPIC_HUB_STARTED)
        yield defer.maybeDeferred(self.on_join, session)
        self._start_adding()

    @defer.inlineCallbacks
    def _register(self, session):
        """Register get_fields, get_data and :meth:`procedures`, all or none."""
        done = [(yield session.register(self._get_fields, wamp.get_fields_uri(self.name)))]
        try:
            done.append((yield session.register(self._get_data, wamp.get_data_uri(self.name),
                                                RegisterOptions(details_arg="details"))))
            done.append((yield session.register(self._get_buckets, wamp.procedure_uri(self.name, "get_buckets"),
                                                RegisterOptions(details_arg="details"))))
            for procedure, handler in self.procedures().items():
                done.append((yield session.register(handler, wamp.procedure_uri(self.name, procedure))))
        except ApplicationError:
            for registration in done:
                yield registration.unregister()
            raise

    def _start_adding(self):
        """Try to add the node now, and every ADD_RETRY seconds until the hub says yes."""
        if self._add_loop is not None and self._add_loop.running:
            return
        self._add_loop = task.LoopingCall(self._add)
        self._add_loop.start(ADD_RETRY, now=True).addErrback(lambda f: None)

    @defer.inlineCallbacks
    def _add(self):
        session = self.session
        if session is None or not session.is_attached():
            return
        try:
            accepted = yield session.call(wamp.HUB_ADD, self.name, self.description, session._session_id)
        except ApplicationError as exc:
            if not self._waiting_for_hub:
                self.log.info("hub not there yet ({error}); retrying every {s} s", error=exc.error, s=ADD_RETRY)
            self._waiting_for_hub = True
            return
        self._waiting_for_hub = False
        if not accepted:
            # held by another live session: ours from before a reconnect (the router
            # will drop it soon, keep trying), or another server's (a configuration error)
            if not self._added_once:
                wamp.fatal(f"the hub refused data node name {self.name!r}: another live server holds it")
                return
            self.log.warn("the hub still gives {name} to another live session; retrying", name=self.name)
            return
        if self._add_loop is not None and self._add_loop.running:
            self._add_loop.stop()
        self._added_once = True
        self.log.info("added data node {name} to the hub", name=self.name)
        self.ready()

    def name_taken(self) -> None:
        """Another live server serves this name: a configuration error, the process stops."""
        wamp.fatal(f"data node name {self.name!r} is served by another live server")

    def ready(self) -> None:
        """Tell systemd the node serves (a node hosted in another component's process leaves that one's line);
        what start-up made is left out of later garbage collections (:mod:`sisock.collector`)."""
        collector.freeze_start_up()
        notify.ready(f"{self.name}: joined the router and added to the hub; serving")

    def announce(self) -> None:
        """In the reactor: add the node to the hub again, which announces it again, so consumers
        read its fields now rather than at their next refresh (a feed's first samples, a new
        field). Nothing before the hub has accepted the node: its first add announces it."""
        session = self.session
        if self._added_once and session is not None and session.is_attached():
            d = session.call(wamp.HUB_ADD, self.name, self.description, session._session_id)
            d.addErrback(lambda failure: self.log.info("could not announce {name} again: {error}", name=self.name,
                                                       error=failure.getErrorMessage()))

    def _leave(self, session, details):
        self.session = None
        if self._add_loop is not None and self._add_loop.running:
            self._add_loop.stop()

    @defer.inlineCallbacks
    def _subtract(self):
        """Leave the hub's list on a clean shutdown. A hub that stopped first (the whole
        host stops) has nothing to subtract from: that is expected, not a warning."""
        session = self.session
        if session is None or not session.is_attached() or not self._added_once:
            return
        try:
            yield session.call(wamp.HUB_SUBTRACT, self.name, session._session_id)
        except ApplicationError as exc:
            if exc.error != "wamp.error.no_such_procedure":
                raise
            self.log.info("the hub has stopped already; nothing to subtract")

    def prepare(self) -> Tuple[list, List[wamp.ShutdownHook]]:
        """Set the server up to run in this process's reactor: its WAMP components and its
        shutdown hooks, for :func:`sisock.wamp.run` (another component's process may host it)."""
        self.component = wamp.make_component(self.config)
        reactor.callWhenRunning(self.pool.start)
        reactor.callWhenRunning(self._start_warm_up)
        reactor.addSystemEventTrigger("during", "shutdown", self.pool.stop)  # type: ignore[arg-type]  # zope interface (mypy sees no self)
        node_metrics.watch_pool(self.name, self.pool)
        self.component.on("join", self._join)
        self.component.on("leave", self._leave)
        return self.components(), [self._subtract]

    def run(self) -> int:
        """Connect, serve until SIGTERM, and return the exit code."""
        components, hooks = self.prepare()
        return wamp.run(self.name, self.config, components, on_shutdown=hooks)
