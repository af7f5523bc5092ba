"""The CherryPy application: SimpleJSON and JSON datasource endpoints, one JSON answer each.

Every endpoint answers JSON, errors included (``{"error": "..."}`` with 400,
401, 404, 405, 408, 413, 415, 421, 502, 503 or 500; Grafana shows that text on the
panel), and logs one line per request: info, or for a server-side failure
(5xx) a warning at most once a minute per kind, or an error with the traceback
for a fault of sisock-http itself (500). Request threads reach the WAMP
session only through :mod:`sisock.http.fanout` and the catalogue, both
bounded by ``HTTP_TIMEOUT``.
"""
from __future__ import annotations

import functools
import time
from typing import Callable, Dict, List

import cherrypy
import orjson
from twisted.python.failure import Failure

from sisock import log
from sisock.config import Config
from sisock.http import answers, fanout, join
from sisock.http.answers import BIG_POINTS, BigAnswers, Entry, possible_points
from sisock.http.auth import Authenticator
from sisock.http.catalogue import Catalogue
from sisock.http.errors import NotConnected, NotFound, RequestError, describe
from sisock.http.intake import check_content_type, check_host, read_body
from sisock.http.request import parse_json, parse_query, text_filter
from sisock.http.results import Results
from sisock.http.shape import shape
from sisock.metrics import http as http_metrics
from sisock.wamp_thread import ThreadedSession, in_reactor

_log = log.logger()
#: Repeated warnings (a data node down, the hub away) are logged at most once a minute per kind.
_throttle = log.Throttle()


def encode(body: object) -> bytes:
    """Standard compact JSON, NaN and infinities as null; orjson writes a panel's floats about
    ten times faster than the standard library, which was most of a ``/query``'s own cost."""
    return orjson.dumps(body)


def _answer(status: int, body: object) -> bytes:
    cherrypy.response.status = status
    cherrypy.response.headers["Content-Type"] = "application/json"
    return encode(body)


class Streamed:
    """A big answer (:mod:`sisock.http.answers`): its entries, written while the client reads them;
    ``done()`` runs once it is written or abandoned."""

    def __init__(self, entries: List[Entry], done: Callable[[], None]) -> None:
        self.entries, self.done = entries, done


def endpoint(methods: tuple = ("POST",), any_path: bool = False) -> Callable:
    """Expose a handler ``(self, body: dict) -> (answer, log note)``: parse, answer JSON, log once.

    Extra path segments are a 404 unless ``any_path`` (the catch-all). An answer that is
    :class:`Streamed` is written chunk by chunk, and logged when it is done.
    """
    def wrap(handler: Callable) -> Callable:
        @cherrypy.expose
        @functools.wraps(handler)
        def serve(self, *path, **params):
            request = cherrypy.request
            began = time.perf_counter()
            http_metrics.started()
            request.sisock_timing = {}
            request.sisock_notes = {}  # Server-Timing descriptions, by metric
            if path and not any_path:
                status, payload, note = 404, {"error": f"no such endpoint {request.path_info}"}, ""
            elif request.method not in methods:
                cherrypy.response.headers["Allow"] = ", ".join(methods)
                allowed = " or ".join(methods)
                status, payload, note = 405, {"error": f"{request.method} is not allowed here; use {allowed}"}, ""
            else:
                status, payload, note = self._run(handler, request)
            line = "{method} {path} {status}: {note}{ms:.1f} ms ({details})"
            fields = dict(method=request.method, path=request.path_info, status=status, note=note)

            def log_line(timing: dict) -> None:
                http_metrics.finished(request.path_info, status, time.perf_counter() - began)
                fields.update(ms=(time.perf_counter() - began) * 1000,
                              details=timing_text(timing))
                if status >= 500:
                    _throttle.warn(_log, f"{status} {request.path_info}", line, quiet="info", **fields)
                else:
                    _log.info(line, **fields)

            timing = dict(request.sisock_timing)
            notes = request.sisock_notes
            if isinstance(payload, Streamed):
                cherrypy.response.status = status
                cherrypy.response.headers["Content-Type"] = "application/json"
                cherrypy.response.headers["Server-Timing"] = server_timing(timing, notes)
                cherrypy.response.stream = True
                streamed = payload
                written = time.perf_counter()

                def end(sent: int, complete: bool) -> None:
                    streamed.done()
                    fields["note"] += f"{sent} bytes streamed{'' if complete else ' (the client stopped reading)'}, "
                    log_line(dict(timing, encode=time.perf_counter() - written))

                return answers.paced(answers.chunks(payload.entries), self.config.http_body_timeout, end)
            encode_began = time.perf_counter()
            try:
                data = _answer(status, payload)
            except (TypeError, ValueError) as exc:  # a value JSON cannot carry: cost one request
                status, fields["note"] = 500, f"cannot encode the answer: {exc}; "
                fields["status"] = status
                data = _answer(status, {"error": f"internal error: cannot encode the answer: {exc}"})
            timing["encode"] = time.perf_counter() - encode_began
            cherrypy.response.headers["Server-Timing"] = server_timing(timing, notes)
            log_line(timing)
            return data
        return serve
    return wrap


def timing_text(timing: Dict[str, float]) -> str:
    """A request's steps and their milliseconds, for its log line."""
    return ", ".join(f"{k} {v * 1000:.1f}" for k, v in timing.items())


def server_timing(timing: Dict[str, float], notes: Dict[str, str]) -> str:
    """The ``Server-Timing`` header of a request's steps (seconds), with ``notes`` as descriptions."""
    return ", ".join(f"{k};dur={v * 1000:.1f}" + (f';desc="{notes[k]}"' if k in notes else "")
                     for k, v in timing.items())


class Datasource:
    """Grafana's SimpleJSON and simPod JSON datasource API over the WAMP data nodes."""

    def __init__(self, config: Config, session: ThreadedSession, catalogue: Catalogue) -> None:
        self.config = config
        self.session = session
        self.catalogue = catalogue
        self.auth = Authenticator(config)
        self.big = BigAnswers()
        self.results = Results(config.http_cache_mb * 1_000_000)
        http_metrics.watch_kept(lambda: self.results.kept.size)

    def _run(self, handler: Callable, request) -> tuple:
        try:
            self.auth.check(request.headers, cherrypy.response.headers)
            check_host(request.headers, self.config.http_public_names)
            raw = read_body(request.rfile, self.config.http_body_timeout)
            check_content_type(request.headers, raw)
            payload, note = handler(self, parse_json(raw) if request.method == "POST" else {})
            return 200, payload, note
        except RequestError as exc:
            if exc.status == 503:
                cherrypy.response.headers["Retry-After"] = "5"
            return exc.status, {"error": str(exc)}, f"{exc}; "
        except Exception as exc:  # a bug must cost one request, never the server
            _log.error("{path}: unexpected error", path=request.path_info, log_failure=Failure())
            return 500, {"error": f"internal error: {describe(exc)}"}, "internal error; "

    def _fresh_catalogue(self) -> Catalogue:
        """The catalogue, refreshed first if it is stale (:func:`fresh`)."""
        return fresh(self.catalogue, self.session, self.config.http_timeout)

    @endpoint(methods=("GET", "HEAD", "POST"))
    def index(self, body: dict):
        """Health: 200 when joined to the router with the node list loaded, 503 with the reason when not."""
        if not self.session.connected:
            raise NotConnected(f"not connected to the WAMP router at {_router(self.config)}")
        if not self.catalogue.loaded:
            raise NotConnected(f"joined the WAMP router at {_router(self.config)}; loading the data nodes' fields")
        return {"status": "ok", "router": _router(self.config), "data_nodes": sorted(self.catalogue.nodes())}, ""

    @endpoint()
    def search(self, body: dict):
        """SimpleJSON: every ``node::field`` containing the request's ``target`` text."""
        names = self._fresh_catalogue().names(text_filter(body, "target"))
        return names, f"{len(names)} names, "

    @endpoint()
    def metrics(self, body: dict):
        """JSON datasource: every ``node::field`` as a metric (no payload options)."""
        entries = self._fresh_catalogue().entries()
        metrics = [{"label": _label(name, info), "value": name, "payloads": []} for name, info in entries]
        return metrics, f"{len(metrics)} metrics, "

    @endpoint()
    def metric_payload_options(self, body: dict):
        """JSON datasource: sisock metrics take no payload, so no options."""
        return [], ""

    @endpoint()
    def variable(self, body: dict):
        """JSON datasource: a query variable lists the ``node::field`` names containing ``payload.target``."""
        names = self._fresh_catalogue().names(text_filter(body, "payload", "target"))
        return [{"text": name, "value": name} for name in names], f"{len(names)} values, "

    @endpoint()
    def tag_keys(self, body: dict):
        """JSON datasource: sisock offers no ad hoc filters."""
        return [], ""

    @endpoint()
    def tag_values(self, body: dict):
        """JSON datasource: no ad hoc filters, so no values."""
        return [], ""

    @endpoint()
    def annotations(self, body: dict):
        """SimpleJSON: sisock has no annotations; a valid empty answer."""
        return [], ""

    @endpoint(methods=("GET", "HEAD", "POST"), any_path=True)
    def default(self, body: dict):
        """Any other path: a JSON 404."""
        raise NotFound(f"no such endpoint {cherrypy.request.path_info}")

    @endpoint()
    def query(self, body: dict):
        """Time series and tables for ``node::field`` targets, fetched from all nodes in parallel;
        a query that may hold many points takes a slot for big answers (:mod:`sisock.http.answers`)."""
        query = parse_query(body, self.config.http_max_targets)
        big = possible_points(query.max_points, len(query.targets)) > BIG_POINTS
        if big:
            self.big.take(self.config.http_timeout)
        try:
            entries, points = self._answer(query)
        except BaseException:
            if big:
                self.big.give()
            raise
        note = f"{len(query.targets)} targets, {points} points, "
        if big and points > BIG_POINTS:
            return Streamed(entries, self.big.give), note
        if big:
            self.big.give()
        return [entry.as_dict() for entry in entries], note

    def _answer(self, query) -> tuple:
        """The entries of a query's answer and how many points they hold."""
        timing = cherrypy.request.sisock_timing
        began = time.perf_counter()
        names = query.joined()
        wanted = query.by_node()
        live = None
        if names:
            self.catalogue.nudge()  # which feeds serve a name: known by the next query if it changed
            for name in names:  # the archive's part of a joined name comes with its other targets
                fields = wanted.setdefault(join.ARCHIVE_NODE, [])
                if name not in fields:
                    fields.append(name)
            since = max(query.start, time.time() - self.config.buffer_time - join.HORIZON_SLACK)
            live_nodes = join.live_plan(names, self.catalogue.serving)
            if live_nodes and since < query.end:
                live = fanout.Live(live_nodes, since, query.end)

        def issue(calls: List[fanout.Call], first: bool) -> list:
            return fanout.fetch(self.session, calls, query.node_stride(), self.config.http_timeout,
                                self.catalogue.absence, live if first else None)

        answered, note = self.results.fetch(wanted, query.start, query.end, query.node_stride(), issue)
        timing["wamp"], timing["cache"] = time.perf_counter() - began - note.seconds, note.seconds
        cherrypy.request.sisock_notes["cache"] = note.text()
        http_metrics.kept(note.hits, note.again, note.fields)
        began = time.perf_counter()
        joined = {name: join.series(name, answered.get(join.ARCHIVE_NODE), live.answers if live else {},
                                    (query.start, query.end), query.node_stride(), query.max_points)
                  for name in names}
        timing["join"] = time.perf_counter() - began
        return shape(query, answered, timing, self.config.http_max_points, joined)


def fresh(catalogue: Catalogue, session: ThreadedSession, timeout: float) -> Catalogue:
    """``catalogue``, refreshed first if it is stale (a slow node only costs ``timeout``)."""
    if session.connected and catalogue.stale:
        try:
            in_reactor(catalogue.refresh, timeout=timeout)
        except Exception as exc:
            _throttle.warn(_log, "catalogue", "catalogue refresh failed: {error}", error=describe(exc))
    return catalogue


def _router(config: Config) -> str:
    return f"wss://{config.crossbar_host}:{config.crossbar_tls_port}/ws realm {config.crossbar_realm}"


def _label(name: str, info: dict) -> str:
    units = info.get("units") if isinstance(info, dict) else None
    return f"{name} ({units})" if units else name


def error_page(status: str, message: str, traceback: str, version: str) -> bytes:
    """CherryPy's own errors (unknown path, bad method) as JSON too."""
    cherrypy.response.headers["Content-Type"] = "application/json"
    return encode({"error": f"{status}: {message}"})


#: Bodies are read raw (:mod:`sisock.http.intake`), not by CherryPy.
APP_CONFIG: Dict[str, dict] = {"/": {"error_page.default": error_page, "request.show_tracebacks": False,
                                     "tools.encode.on": False, "request.process_request_body": False}}
