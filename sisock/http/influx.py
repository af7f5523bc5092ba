"""InfluxDB 1.x's read API under ``/influxdb``: Grafana's built-in InfluxDB datasource (InfluxQL),
its panels and its alert rules, on sisock's data (:mod:`sisock.influxql` does the language;
this module only speaks InfluxDB's HTTP).

- ``GET|HEAD /influxdb/ping``: 204 with ``X-Influxdb-Version``.
- ``GET|POST /influxdb/query``: ``q`` (in the URL, or a form-encoded POST body), ``db``, ``epoch``
  (h, m, s, ms, u, µ, ns; none: RFC3339), ``pretty``, ``chunked`` and ``chunk_size``, ``params``
  (bound parameters, JSON), ``rp``; credentials as sisock-http's (basic auth, the bearer token)
  or as InfluxDB's ``u`` and ``p`` parameters. Answers as InfluxDB does: 200 with per-statement
  results and errors, 400 for a query that does not parse, 401 without or with wrong
  credentials, 403 for a statement a read-only user may not run (sisock writes nothing).
"""
from __future__ import annotations

import json
import time
import urllib.parse
from typing import Dict, Iterator, List, Optional, Tuple

import cherrypy
from twisted.python.failure import Failure

from sisock import log
from sisock.config import Config
from sisock.http.app import error_page, fresh, server_timing, timing_text
from sisock.http.auth import Authenticator
from sisock.http.catalogue import Catalogue
from sisock.http.errors import RequestError
from sisock.http.influx_source import WampSource
from sisock.http.intake import check_host, read_body
from sisock.http.join import HORIZON_SLACK
from sisock.http.kept_buckets import KeptBuckets
from sisock.influxql import answer
from sisock.influxql.executor import execute
from sisock.influxql.parser import ParseError, parse, trim_query
from sisock.influxql.readonly import authorization_error
from sisock.influxql.select import Limits
from sisock.metrics import http as http_metrics
from sisock.wamp_thread import ThreadedSession

#: What ``/ping`` says the server is: the InfluxDB 1.x API it answers.
VERSION = "1.8.10"
#: Statements of one query run at once (a dashboard's panel sent as one query waits for the slowest
#: of its statements' data nodes, not the sum): a panel of eight targets all at once.
CONCURRENT = 8
#: Rows of a series in one object of a chunked answer, unless ``chunk_size`` says otherwise.
CHUNK_SIZE = 10_000

_log = log.logger()
_throttle = log.Throttle()


class Refused(Exception):
    """A request answered with InfluxDB's ``{"error": ...}`` and ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class InfluxApi:
    """The ``/influxdb`` mount (see the module docstring)."""

    def __init__(self, config: Config, session: ThreadedSession, catalogue: Catalogue) -> None:
        self.config = config
        self.session = session
        self.catalogue = catalogue
        self.auth = Authenticator(config)
        self.kept = KeptBuckets(config.http_cache_mb * 1_000_000)  # final buckets, across requests
        http_metrics.watch_kept_buckets(lambda: self.kept.kept.size)

    @cherrypy.expose
    def ping(self, *path, **params):
        """204 (InfluxDB's health check)."""
        began = time.perf_counter()
        response = cherrypy.response
        response.headers["X-Influxdb-Version"] = VERSION
        response.headers["X-Influxdb-Build"] = "OSS"
        if path or cherrypy.request.method not in ("GET", "HEAD"):
            return self._json(404 if path else 405, answer.error("not found" if path else "method not allowed"),
                              began, "")
        response.status = 204
        self._line(204, began, "")
        return b""

    @cherrypy.expose
    def query(self, *path, **_ignored):
        """InfluxQL statements, answered in InfluxDB's JSON."""
        began = time.perf_counter()
        request = cherrypy.request
        cherrypy.response.headers["X-Influxdb-Version"] = VERSION
        try:
            if path:
                raise Refused(404, "not found")
            if request.method not in ("GET", "POST"):
                cherrypy.response.headers["Allow"] = "GET, POST"
                raise Refused(405, f"{request.method} is not allowed here; use GET or POST")
            params = self._params()
            user = self._authenticate(params)
            check_host(request.headers, self.config.http_public_names)
            body, note = self._run(params, user)
        except Refused as exc:
            return self._json(exc.status, answer.error(str(exc)), began, f"{exc}; ")
        except RequestError as exc:  # refused at intake: Host, body size or time
            return self._json(exc.status, answer.error(str(exc)), began, f"{exc}; ")
        except Exception as exc:  # a bug costs one request, never the server
            _log.error("{path}: unexpected error", path=request.path_info, log_failure=Failure())
            return self._json(500, answer.error(f"internal error: {type(exc).__name__}: {exc}"), began,
                              "internal error; ")
        if params.get("chunked") == "true":
            return self._chunked(body, int(params.get("chunk_size") or CHUNK_SIZE), began, note)
        return self._json(200, body, began, note, pretty=params.get("pretty") == "true")

    @cherrypy.expose
    def default(self, *path, **_ignored):
        """Any other path: InfluxDB's 404."""
        return self._json(404, answer.error("not found"), time.perf_counter(), "")

    # -- the steps of a query -------------------------------------------------------------
    def _params(self) -> Dict[str, str]:
        """The URL's parameters, and a form-encoded POST body's (the body's ``q`` wins, as in InfluxDB)."""
        request = cherrypy.request
        params = dict(urllib.parse.parse_qsl(request.query_string, keep_blank_values=True))
        if request.method == "POST":
            raw = read_body(request.rfile, self.config.http_body_timeout)
            kind = request.headers.get("Content-Type", "").partition(";")[0].strip().lower()
            if raw and kind == "application/x-www-form-urlencoded":
                params.update(urllib.parse.parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        return params

    def _authenticate(self, params: Dict[str, str]) -> str:
        """The user a request runs as ("" without credentials configured); InfluxDB's 401 otherwise."""
        if not self.auth.required:
            return ""
        header = cherrypy.request.headers.get("Authorization", "")
        if "u" in params or "p" in params:
            if self.auth.allows_pair(params.get("u", ""), params.get("p", "")):
                return params.get("u", "")
        elif header:
            if self.auth.allows(header):
                return self.auth.user.decode() or "token"
        else:
            cherrypy.response.headers["WWW-Authenticate"] = self.auth.challenge()
            raise Refused(401, "unable to parse authentication credentials")
        cherrypy.response.headers["WWW-Authenticate"] = self.auth.challenge()
        raise Refused(401, "authorization failed")

    def _run(self, params: Dict[str, str], user: str) -> Tuple[dict, str]:
        """Parse, check and execute ``q``; the answer object and a note for the log line."""
        text = trim_query(params.get("q", ""))
        if not text:
            raise Refused(400, 'missing required parameter "q"')
        bound = None
        if params.get("params"):
            try:
                bound = json.loads(params["params"])
            except ValueError as exc:
                raise Refused(400, f"error parsing query parameters: {exc}") from None
            if not isinstance(bound, dict):
                raise Refused(400, "error parsing query parameters: not a JSON object")
        timing = cherrypy.request.sisock_timing = {}
        began = time.perf_counter()
        try:
            statements = parse(text, bound)
        except ParseError as exc:
            raise Refused(400, str(exc)) from None
        timing["parse"] = time.perf_counter() - began
        database = params.get("db", "")
        if self.auth.required:
            refused = authorization_error(statements, user, database, {self.config.influxdb_database})
            if refused is not None:
                raise Refused(403, f"error authorizing query: {refused}")
        fresh(self.catalogue, self.session, self.config.http_timeout)  # a browser's first look after a start
        source = WampSource(self.session, self.catalogue, self.config.http_timeout,
                            self.config.buffer_time + HORIZON_SLACK, self.kept)
        limits = Limits(points=self.config.influxdb_max_select_point, buckets=self.config.influxdb_max_select_buckets)
        began = time.perf_counter()
        result = execute(statements, source, database, databases=(self.config.influxdb_database,),
                         epoch=params.get("epoch") or None, limits=limits, concurrent=CONCURRENT)
        timing["execute"], timing["data"] = time.perf_counter() - began, source.waited
        results = result["results"]
        assert isinstance(results, list)
        series = sum(len(r.get("series", [])) for r in results if isinstance(r, dict))
        http_metrics.influx_buckets(source.buckets_kept, source.buckets_asked)
        kept = f"{source.buckets_kept}/{source.buckets_asked} buckets from kept runs"
        cherrypy.request.sisock_kept = kept
        return result, f"{len(statements)} statements, {series} series, {kept}, "

    # -- answers --------------------------------------------------------------------------
    def _json(self, status: int, body: dict, began: float, note: str, pretty: bool = False) -> bytes:
        response = cherrypy.response
        response.status = status
        response.headers["Content-Type"] = "application/json"
        encoding = time.perf_counter()
        text = json.dumps(json.loads(answer.dumps(body)), indent=4, ensure_ascii=False) if pretty else \
            answer.dumps(body)
        self._timed("encode", encoding)
        self._line(status, began, note)
        return text.encode() + b"\n"

    @staticmethod
    def _timed(step: Optional[str], began: float) -> None:
        """Add ``step`` (begun at ``began``) to the request's timings and set ``Server-Timing``: what kept
        runs gave, then parse, execute (``data``: its statements' waits on the data nodes, added up), encode."""
        request = cherrypy.request
        timing = getattr(request, "sisock_timing", None)
        if timing is None:
            return  # refused before it ran
        if step is not None:
            timing[step] = time.perf_counter() - began
        kept = getattr(request, "sisock_kept", None)
        parts = ([f'kept;desc="{kept}"'] if kept else []) + [server_timing(timing, {})]
        cherrypy.response.headers["Server-Timing"] = ", ".join(parts)

    def _chunked(self, body: dict, size: int, began: float, note: str) -> Iterator[bytes]:
        """InfluxDB's chunked answer: one JSON object a line, each series cut into runs of ``size``
        rows marked ``partial`` but the last."""
        response = cherrypy.response
        response.status = 200
        response.headers["Content-Type"] = "application/json"
        response.stream = True
        self._timed(None, 0.0)  # encoded as it is sent
        self._line(200, began, note + "chunked, ")
        results = body.get("results") or []
        assert isinstance(results, list)
        return (answer.dumps({"results": [piece]}).encode() + b"\n" for piece in _pieces(results, max(size, 1)))

    def _line(self, status: int, began: float, note: str) -> None:
        request = cherrypy.request
        timing = getattr(request, "sisock_timing", None) or {}
        line = "{method} {path} {status}: {note}{ms:.1f} ms{details}"
        details = f" ({timing_text(timing)})" if timing else ""
        fields = dict(method=request.method, path=request.path_info, status=status, note=note,
                      ms=(time.perf_counter() - began) * 1000, details=details)
        if status >= 500:
            _throttle.warn(_log, f"{status} {request.path_info}", line, quiet="info", **fields)
        else:
            _log.info(line, **fields)


def _pieces(results: List[dict], size: int) -> Iterator[dict]:
    """Each statement's result cut as InfluxDB's chunked answers are."""
    for result in results:
        series = result.get("series")
        if not series:
            yield result
            continue
        parts = []
        for one in series:
            values = one.get("values") or []
            for a in range(0, max(len(values), 1), size):
                piece = dict(one, values=values[a:a + size]) if values else dict(one)
                more = a + size < len(values)
                if more:
                    piece["partial"] = True  # this series goes on in the next object
                parts.append((piece, more))
        for i, (piece, more) in enumerate(parts):
            out = {"statement_id": result["statement_id"], "series": [piece]}
            if more or i < len(parts) - 1:
                out["partial"] = True
            yield out


#: The mount's CherryPy settings: bodies are read raw (form bodies parsed here), answers are bytes,
#: CherryPy's own errors JSON.
INFLUX_CONFIG: Dict[str, dict] = {"/": {"error_page.default": error_page, "request.show_tracebacks": False,
                                        "tools.encode.on": False, "request.process_request_body": False}}
