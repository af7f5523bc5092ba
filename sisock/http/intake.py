"""What a request must be before its body is parsed: addressed to us, a bounded JSON body read in time.

- ``Host``: when ``HTTP_PUBLIC_NAMES`` is set, a request must name one of them
  or a loopback name (a DNS-rebinding page names its own host: 421).
- ``Content-Type``: a body must be declared ``application/json`` (415
  otherwise). A browser sends a cross-origin JSON body only after a CORS
  preflight (``OPTIONS``), which sisock-http never grants, so a page from
  elsewhere cannot make it run a query.
- The body is read to its end, chunked or not, up to ``MAX_BODY`` bytes (413
  beyond, and the connection closes) within ``HTTP_BODY_TIMEOUT`` (408).
"""
from __future__ import annotations

import socket
from typing import Iterable, Mapping

from cheroot.errors import MaxSizeExceeded

from sisock.config import is_loopback
from sisock.http.errors import BadRequest, TimedOut, TooLarge, UnsupportedType, WrongHost
from sisock.http.guard import MAX_BODY

JSON_TYPE = "application/json"


def host_name(host: str) -> str:
    """The name part of a ``Host`` header (no port, no IPv6 brackets), lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def check_host(headers: Mapping[str, str], public_names: Iterable[str]) -> None:
    """WrongHost unless ``Host`` is a loopback name or one of ``public_names`` (no check when there are none)."""
    names = {name.lower() for name in public_names}
    if not names:
        return
    name = host_name(headers.get("Host", ""))
    if name not in names and not is_loopback(name):
        raise WrongHost(f"Host {name!r} is not a name of this server; it answers to {', '.join(sorted(names))} "
                        f"and loopback (HTTP_PUBLIC_NAMES)")


def check_content_type(headers: Mapping[str, str], body: bytes) -> None:
    """UnsupportedType unless an empty body, or a body declared ``application/json``."""
    declared = headers.get("Content-Type", "").partition(";")[0].strip().lower()
    if body and declared != JSON_TYPE:
        raise UnsupportedType(f"the body must be sent as Content-Type: {JSON_TYPE}, not {declared or 'none'!r}")


def read_body(rfile, timeout: float) -> bytes:
    """The whole request body (at most MAX_BODY bytes, within ``timeout`` seconds), chunked or not."""
    too_large = TooLarge(f"the request body is over {MAX_BODY} bytes; a Grafana query is a few kB")
    try:
        body = rfile.read(MAX_BODY + 1)
    except socket.timeout:
        raise TimedOut(f"the request body did not arrive within {timeout:g} s (HTTP_BODY_TIMEOUT)") from None
    except MaxSizeExceeded:
        raise too_large from None
    except ValueError as exc:  # a malformed chunk size
        raise BadRequest(f"the chunked body is malformed: {exc}") from None
    except OSError as exc:  # cheroot's words for a chunk that would pass the limit
        if "Too Large" in str(exc):
            raise too_large from None
        raise
    if len(body) > MAX_BODY:
        raise too_large
    return body
