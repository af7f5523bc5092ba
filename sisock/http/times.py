"""Request times: ISO-8601 with ``Z`` or an offset, never the server's local time zone."""
from __future__ import annotations

import math
from datetime import datetime

from sisock.http.errors import BadRequest


def parse_time(value: object, name: str) -> float:
    """UNIX seconds of an ISO-8601 time that names its zone; BadRequest naming ``name`` otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{name} must be an ISO-8601 time such as 2025-11-10T00:00:00Z, got {value!r}")
    text = value.strip()
    if text[-1:] in ("z", "Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name}={value!r} is not an ISO-8601 time") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise BadRequest(f"{name}={value!r} has no time zone: add Z or an offset such as +00:00")
    seconds = moment.timestamp()
    if not math.isfinite(seconds):
        raise BadRequest(f"{name}={value!r} is out of range")
    return seconds
