"""Query fan-out: one ``get_data`` call per data node, all issued at once in the reactor.

A request thread hands the whole set of calls to the reactor and waits once,
so a panel over several nodes takes as long as the slowest node, not the sum.
A node never listed yields nothing (its targets come back empty); a node that
fails, does not answer within ``HTTP_TIMEOUT``, or was listed but has no
procedures any more makes the request fail with :class:`NodeFailed` naming it
(a 502, whose text Grafana shows on the panel: both plugins fail a whole
panel on an error status and have no per-target notice).

Answers come as progressive pieces when they are large (:mod:`sisock.pieces`), and are
joined into numpy arrays as they arrive. Joined names (:mod:`sisock.http.join`) add a
second step beside the others: the archive's coverage of the live horizon, then each
live node asked for the samples outside it. ``get_buckets`` (InfluxQL's aggregates) goes
the same way (:func:`fetch_buckets`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions
from twisted.internet import defer, reactor

from sisock import buckets, pieces, wamp
from sisock.http.errors import NodeFailed, NotConnected, describe
from sisock.http.join import ARCHIVE_NODE
from sisock.metrics import http as http_metrics
from sisock.wamp_thread import ThreadedSession, in_reactor

#: WAMP errors meaning "no such data node": its targets are empty, not an error.
UNKNOWN_NODE = ("wamp.error.no_such_procedure",)
#: The archive's procedure that says what it holds.
COVERAGE = "get_coverage"

Spans = Tuple[Tuple[float, float], ...]


@dataclass
class Live:
    """The live half of joined names: which live nodes serve which names, asked from ``since``
    (the live horizon) to ``until`` (the window's end) for their samples outside the archive's coverage."""

    nodes: Dict[str, List[str]]
    since: float
    until: float
    #: filled by :func:`fetch`: each live node's answers (one per distinct coverage of its names)
    answers: Dict[str, List[dict]] = field(default_factory=dict)


Joiner = Callable[[List[dict]], dict]
Absence = Callable[[str], Optional[str]]
#: A call's procedure, positional arguments and keywords (a live node's: given its excluded spans).
Ask = Callable[..., Tuple[str, tuple, dict]]


def _call(session, uri: str, *args, timeout: float, joiner: Joiner = pieces.join, **kwargs) -> defer.Deferred:
    """A call whose progressive pieces are taken and joined (``joiner``) with the final result."""
    parts: List[dict] = []
    d = session.call(uri, *args, options=CallOptions(on_progress=parts.append), **kwargs)
    d.addTimeout(timeout, reactor)
    http_metrics.observe_call(d, uri)
    return d.addCallback(lambda last: joiner(parts + [last]))


class Call(NamedTuple):
    """One ``get_data`` call: a node's fields over ``[start, end)``, less the slots ``[cut[0], cut[1])``
    (its keyword ``cut``: :mod:`sisock.http.results` keeps those)."""

    node: str
    fields: List[str]
    start: float
    end: float
    cut: Optional[Tuple[float, float]] = None


def fetch(session: ThreadedSession, calls: List[Call], min_stride: Optional[float], timeout: float,
          absence: Absence, live: Optional[Live] = None) -> List[Optional[dict]]:
    """Each call's ``get_data`` answer, all fetched in parallel (None for a node without procedures,
    unless ``absence(node)`` says why a known node is missing: then NodeFailed). With ``live``,
    its answers are filled in too."""
    asked = [(wamp.get_data_uri(c.node), (c.fields, c.start, c.end, min_stride),
              {} if c.cut is None else {"cut": list(c.cut)}) for c in calls]

    def live_ask(node: str, fields: List[str], spans: list) -> Tuple[str, tuple, dict]:
        assert live is not None
        return wamp.get_data_uri(node), (fields, live.since, live.until, min_stride, spans), {}

    return _gather(session, [c.node for c in calls], asked, live_ask, pieces.join, timeout, absence, live)


def fetch_buckets(session: ThreadedSession, wanted: Dict[str, List[str]], edges: List[int], columns: List[str],
                  timeout: float, absence: Absence, live: Optional[Live] = None,
                  cuts: Optional[Dict[str, Tuple[int, int]]] = None) -> Dict[str, dict]:
    """``get_buckets`` answers per node (edges in whole microseconds), as :func:`fetch`, a node of
    ``cuts`` without the buckets of its cut (:mod:`sisock.http.kept_buckets` keeps those); live
    nodes leave out the archive's coverage and everything before ``live.since``."""
    uri = lambda node: wamp.procedure_uri(node, "get_buckets")  # noqa: E731
    cuts = cuts or {}
    asked: List[Tuple[str, tuple, dict]] = [(uri(node), (fields, edges, columns),
                                             {"cut": list(cuts[node])} if node in cuts else {})
                                            for node, fields in wanted.items()]

    def live_ask(node: str, fields: List[str], spans: list) -> Tuple[str, tuple, dict]:
        assert live is not None
        before = [[edges[0] / 1e6 - 1.0, live.since - 2e-6]] if live.since > edges[0] / 1e6 else []
        return uri(node), (fields, edges, columns, before + spans), {}

    answers = _gather(session, list(wanted), asked, live_ask, buckets.join, timeout, absence, live)
    return {node: answer for node, answer in zip(wanted, answers) if answer is not None}


def _gather(session: ThreadedSession, nodes: List[str], asked: List[Tuple[str, tuple, dict]], live_ask: Ask,
            joiner: Joiner, timeout: float, absence: Absence, live: Optional[Live]) -> List[Optional[dict]]:
    """Every call of ``asked`` (one per node of ``nodes``) at once, and the live round; see :func:`fetch`."""
    if not asked and not (live and live.nodes):
        return []

    def issue():
        wamp_session = session.session
        if wamp_session is None or not wamp_session.is_attached():
            raise NotConnected("not connected to the WAMP router")
        deferreds = [_call(wamp_session, uri, *args, timeout=timeout, joiner=joiner, **kwargs)
                     for uri, args, kwargs in asked]
        if live and live.nodes:
            deferreds.append(_live(wamp_session, live, live_ask, joiner, timeout, absence))
        return defer.DeferredList(deferreds, consumeErrors=True)

    try:
        results = in_reactor(issue, timeout=timeout + 1.0)
    except TimeoutError:
        raise NodeFailed(f"data nodes {', '.join(dict.fromkeys(nodes))}: no answer within {timeout:g} s") from None
    answers: List[Optional[dict]] = []
    for i, (ok, value) in enumerate(results):
        answer = None
        if ok:
            answer = value if isinstance(value, dict) else {}
        elif isinstance(value.value, NodeFailed):
            raise value.value
        else:
            reason = _failure(nodes[i] if i < len(nodes) else "live", value.value, timeout, absence)
            if reason is not None:
                raise NodeFailed(reason)
        answers.append(answer)
    return answers[:len(asked)]


def _failure(node: str, error: BaseException, timeout: float, absence: Absence) -> Optional[str]:
    """What to tell of a failed call to ``node``; None for a node that was never there."""
    if isinstance(error, ApplicationError) and error.error in UNKNOWN_NODE:
        missing = absence(node)
        return None if missing is None else f"data node {node}: {missing}"
    reason = f"no answer within {timeout:g} s" if isinstance(error, defer.TimeoutError) else describe(error)
    return f"data node {node}: {reason}"


@defer.inlineCallbacks
def _live(session, live: Live, ask: Ask, joiner: Joiner, timeout: float, absence: Absence):
    """The archive's coverage of the joined names since the horizon, then every live node asked
    (``ask(node, names, spans)``) for its samples outside it (in the reactor; fills ``live.answers``)."""
    names = sorted({name for fields in live.nodes.values() for name in fields})
    try:
        uri = wamp.procedure_uri(ARCHIVE_NODE, COVERAGE)
        found = yield http_metrics.observe_call(session.call(uri, names, live.since, live.until).addTimeout(
            timeout, reactor), uri)
    except ApplicationError as exc:
        reason = _failure(ARCHIVE_NODE, exc, timeout, absence)
        if reason is not None:
            raise NodeFailed(reason) from None
        found = {}  # no archive at all: every live sample counts
    except defer.TimeoutError:
        raise NodeFailed(f"data node {ARCHIVE_NODE}: no answer within {timeout:g} s") from None
    coverage: Dict[str, Spans] = {name: tuple(tuple(s) for s in (found or {}).get(name, [])) for name in names}
    calls, owners = [], []
    for node, fields in live.nodes.items():
        by_spans: Dict[Spans, List[str]] = {}
        for name in fields:
            by_spans.setdefault(coverage[name], []).append(name)
        for spans, group in by_spans.items():
            uri, args, kwargs = ask(node, group, [list(s) for s in spans])
            calls.append(_call(session, uri, *args, timeout=timeout, joiner=joiner, **kwargs))
            owners.append(node)
    results = yield defer.DeferredList(calls, consumeErrors=True)
    for node, (ok, value) in zip(owners, results):
        if ok:
            live.answers.setdefault(node, []).append(value)
            continue
        reason = _failure(node, value.value, timeout, absence)
        if reason is not None:
            raise NodeFailed(reason)
    return None
