"""The HTTP server's defences against slow, stalled and oversized requests.

cheroot parks idle keep-alive connections in its selector, but a worker
thread that has started reading a request blocks on the socket until the
request is complete. A client that sends one byte a second would hold that
thread for as long as it likes. Here every read of a request is bounded:

- the request line and headers must arrive within ``HTTP_HEADER_TIMEOUT``
  seconds, the body within ``HTTP_BODY_TIMEOUT`` more;
- a request whose next bytes are not there within ``GRACE`` seconds is *slow*,
  and at most ``slow_slots`` slow requests may be read at once (half the
  worker threads): a further one is dropped at once. Normal clients send a
  request in one go and never count as slow, so whatever slow clients do,
  the other half of the workers stays free for them.

A request that misses its deadline gets 408 and its connection is closed;
so does any request whose body was not read to its end (a body refused for
its size or type): no byte of it is ever parsed as the next request. Every
error cheroot writes itself (a bad request line, 408, 413, 414) is JSON, as
every answer of sisock-http, and a log line. Headers that make a request
unreadable are refused as soon as they are read (400): an HTTP/1.1 request
without ``Host``, a ``Content-Length`` that is not a whole number of bytes.
"""
from __future__ import annotations

import _pyio
import json
import select
import socket
import threading
import time
from typing import Optional

from cheroot.makefile import StreamReader
from cheroot.server import HTTPConnection
from cherrypy._cpwsgi_server import CPWSGIHTTPRequest, CPWSGIServer

from sisock import log

#: A request whose next bytes take longer than this (seconds) is slow.
GRACE = 0.5
#: Largest request body accepted (a Grafana query is a few kB); larger ones get 413.
MAX_BODY = 1_000_000

#: What cheroot's own short answers say, beside their status line.
_EXPLAIN = {
    "408": "the request was not received in time (HTTP_HEADER_TIMEOUT, HTTP_BODY_TIMEOUT)",
    "413": f"the request is too large (a body may have at most {MAX_BODY} bytes)",
}


class SlowSlots:
    """How many requests may be read slowly at once."""

    def __init__(self, slots: int) -> None:
        self._free = threading.BoundedSemaphore(max(1, slots))

    def take(self) -> bool:
        """True if a slot was free (and is now held)."""
        return self._free.acquire(blocking=False)

    def give(self) -> None:
        """Free a slot taken with :meth:`take`."""
        self._free.release()


class GuardedSocketIO(_pyio.RawIOBase):
    """A socket's reading side whose reads wait no longer than the current deadline."""

    def __init__(self, sock: socket.socket, slots: SlowSlots) -> None:
        super().__init__()
        self._sock = sock
        self._slots = slots
        self._deadline: Optional[float] = None
        self._slow = False
        #: True once a read missed its deadline: the connection must close.
        self.expired = False

    def readable(self) -> bool:
        return True

    def allow(self, seconds: float) -> None:
        """From now on, reads must complete within ``seconds``."""
        self._deadline = time.monotonic() + seconds

    def release(self) -> None:
        """The request has been read: give back its slow slot, if it held one."""
        if self._slow:
            self._slow = False
            self._slots.give()

    def _ready(self, seconds: float) -> bool:
        poller = select.poll()
        poller.register(self._sock, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(max(0.0, seconds) * 1000.0))

    def readinto(self, buffer) -> int:
        if self._deadline is not None and not self._ready(min(GRACE, self._deadline - time.monotonic())):
            if not self._slow:
                if not self._slots.take():
                    self.expired = True
                    raise socket.timeout("timed out")
                self._slow = True
            if not self._ready(self._deadline - time.monotonic()):
                self.expired = True
                raise socket.timeout("timed out")
        return self._sock.recv_into(buffer)

    def close(self) -> None:
        self.release()
        super().close()


class GuardedReader(StreamReader):
    """cheroot's buffered socket reader over a :class:`GuardedSocketIO`."""

    def __init__(self, raw: GuardedSocketIO, bufsize: int) -> None:
        _pyio.BufferedReader.__init__(self, raw, bufsize)
        self.bytes_read = 0


def header_problem(protocol: bytes, headers: dict) -> Optional[str]:
    """Why a request's headers cannot be answered (None when they can): cheroot reads a negative
    Content-Length as a body that never ends, and CherryPy refuses a missing Host only later,
    with an HTML page."""
    if protocol == b"HTTP/1.1" and b"Host" not in headers:
        return "an HTTP/1.1 request must carry a Host header"
    length = headers.get(b"Content-Length")
    if length is not None and not (length.strip().isdigit() and length.strip().isascii()):
        return f"Content-Length {length.decode('latin-1')[:40]!r} is not a whole number of bytes"
    return None


class GuardedRequest(CPWSGIHTTPRequest):
    """CherryPy's request, with deadlines on reading, its headers checked, and JSON and a log
    line for cheroot's own answers."""

    def parse_request(self) -> None:
        raw = self.conn.rfile.raw
        raw.allow(self.server.header_timeout)
        super().parse_request()
        if not getattr(self, "ready", False):  # cheroot sets it once the request line and headers are read
            return
        problem = header_problem(self.request_protocol, self.inheaders)
        if problem is not None:
            self.simple_response("400 Bad Request", problem)
            self.ready = False
            return
        raw.allow(self.server.body_timeout)

    def send_headers(self) -> None:
        raw = self.conn.rfile.raw
        raw.release()
        body_left = self.chunked_read and not getattr(self.rfile, "closed", True)
        if raw.expired or body_left:
            self.close_connection = True
        super().send_headers()

    def simple_response(self, status, msg="") -> None:
        """cheroot's own error answer (``msg``: str or bytes) as JSON; the connection then closes,
        since nothing after a malformed or refused request can be trusted."""
        status = str(status)
        reason = _EXPLAIN.get(status[:3]) or (msg.decode("latin-1") if isinstance(msg, bytes) else msg) or status
        body = json.dumps({"error": f"{status}: {reason}"}).encode()
        method = (getattr(self, "method", None) or b"-").decode("latin-1", "replace")[:16]
        path = (getattr(self, "path", None) or b"-").decode("latin-1", "replace")[:200]
        log.logger().info("{method} {path} {status}: {reason}", method=method, path=path, status=status[:3],
                          reason=reason)
        head = (f"{self.server.protocol} {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        self.conn.rfile.raw.expired = True
        self.close_connection = True
        try:
            self.conn.wfile.write(head.encode("latin-1") + body)
        except OSError:
            pass  # the client has gone; nothing to tell it


class GuardedConnection(HTTPConnection):
    """A connection whose reads are bounded by :class:`GuardedSocketIO`."""

    RequestHandlerClass = GuardedRequest

    def __init__(self, server, sock, makefile=None) -> None:
        """``makefile`` (cheroot's, for TLS sockets) is not used: sisock-http serves plain HTTP."""
        super().__init__(server, sock)
        self.rfile = GuardedReader(GuardedSocketIO(sock, server.slow_slots), self.rbufsize)

    def communicate(self) -> bool:
        keep = super().communicate()
        return keep and not self.rfile.raw.expired


class GuardedServer(CPWSGIServer):
    """CherryPy's WSGI server with :class:`GuardedConnection`; half its workers may serve slow requests."""

    def __init__(self, adapter, header_timeout: float, body_timeout: float) -> None:
        super().__init__(adapter)
        self.ConnectionClass = GuardedConnection
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.slow_slots = SlowSlots(adapter.thread_pool // 2)
