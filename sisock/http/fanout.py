"""Query fan-out: one ``get_data`` call per data node, all issued at once in the reactor.

A request thread hands the whole set of calls to the reactor and waits once,
so a panel over several nodes takes as long as the slowest node, not the sum.
A node never listed yields nothing (its targets come back empty); a node that
fails, does not answer within ``HTTP_TIMEOUT``, or was listed but has no
procedures any more makes the request fail with :class:`NodeFailed` naming it
(a 502, whose text Grafana shows on the panel: both plugins fail a whole
panel on an error status and have no per-target notice).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, reactor

from sisock import wamp
from sisock.http.errors import NodeFailed, NotConnected, describe
from sisock.wamp_thread import ThreadedSession, in_reactor

#: WAMP errors meaning "no such data node": its targets are empty, not an error.
UNKNOWN_NODE = ("wamp.error.no_such_procedure",)


def fetch(session: ThreadedSession, wanted: Dict[str, List[str]], start: float, end: float,
          min_stride: Optional[float], timeout: float,
          absence: Callable[[str], Optional[str]]) -> Dict[str, dict]:
    """``get_data`` answers per node, all fetched in parallel; nodes without procedures are left out
    unless ``absence(node)`` says why a known node is missing."""
    if not wanted:
        return {}

    def issue():
        wamp_session = session.session
        if wamp_session is None or not wamp_session.is_attached():
            raise NotConnected("not connected to the WAMP router")
        calls = [wamp_session.call(wamp.get_data_uri(node), fields, start, end, min_stride).addTimeout(timeout, reactor)
                 for node, fields in wanted.items()]
        return defer.DeferredList(calls, consumeErrors=True)

    try:
        results = in_reactor(issue, timeout=timeout + 1.0)
    except TimeoutError:
        raise NodeFailed(f"data nodes {', '.join(wanted)}: no answer within {timeout:g} s") from None
    answers = {}
    for node, (ok, value) in zip(wanted, results):
        if ok:
            answers[node] = value if isinstance(value, dict) else {}
            continue
        error = value.value
        if isinstance(error, ApplicationError) and error.error in UNKNOWN_NODE:
            missing = absence(node)
            if missing is None:
                continue
            raise NodeFailed(f"data node {node}: {missing}")
        reason = f"no answer within {timeout:g} s" if isinstance(error, defer.TimeoutError) else describe(error)
        raise NodeFailed(f"data node {node}: {reason}")
    return answers

