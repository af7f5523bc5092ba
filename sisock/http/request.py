"""Parsing and validating Grafana's request bodies; a malformed one raises :class:`BadRequest`."""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Dict, List, Optional

from sisock.decimate import choose_step
from sisock.http.errors import BadRequest, TooLarge
from sisock.http.join import is_full_name
from sisock.http.times import parse_time

#: A data node name becomes part of a WAMP URI: dot-separated parts without spaces or '#'.
NODE_NAME = re.compile(r"([^\s.#]+\.)*[^\s.#]+")


@dataclass(frozen=True)
class Target:
    """One ``<data node>::<field>`` target of a query, or a joined archive full name (node ``""``)."""

    name: str
    node: str
    field: str
    table: bool


@dataclass(frozen=True)
class Query:
    """A validated ``/query`` request; times in UNIX seconds."""

    start: float
    end: float
    min_stride: Optional[float]
    max_points: Optional[int]
    targets: List[Target]

    def node_stride(self) -> Optional[float]:
        """The ``min_stride`` asked of data nodes: ``intervalMs``, widened so that each
        answer already fits ``maxDataPoints`` and no more data than shown crosses the router."""
        step = choose_step(self.start, self.end, self.min_stride, self.max_points)
        return step if step and math.isfinite(step) else self.min_stride

    def by_node(self) -> Dict[str, List[str]]:
        """The distinct fields wanted from each data node."""
        wanted: Dict[str, List[str]] = {}
        for target in self.targets:
            if not target.node:
                continue  # joined: sisock.http.join plans those
            fields = wanted.setdefault(target.node, [])
            if target.field not in fields:
                fields.append(target.field)
        return wanted

    def joined(self) -> List[str]:
        """The distinct joined names (archive full names without a node)."""
        return list(dict.fromkeys(t.field for t in self.targets if not t.node))


def parse_json(body: bytes) -> dict:
    """The JSON object of a request body (an empty body counts as ``{}``)."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("the body is not valid JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    return value


def split_target(text: str) -> Target:
    """``node::field`` (or a joined ``observatory.<agent>.feeds.<feed>.<field>``) as a Target;
    BadRequest if it is neither."""
    node, sep, field = text.partition("::")
    if not sep and is_full_name(text):
        return Target(text, "", text, False)
    if not sep or not node or not field:
        raise BadRequest(f"target {text!r} is not of the form <data node>::<field> "
                         f"or observatory.<agent>.feeds.<feed>.<field>")
    if not NODE_NAME.fullmatch(node):
        raise BadRequest(f"target {text!r}: {node!r} is not a valid data node name")
    return Target(text, node, field, False)


#: Largest ``intervalMs`` or ``maxDataPoints`` taken as given (about 3 years in ms); larger ones are this.
LARGEST_NUMBER = 1e11


def _number(body: dict, key: str, minimum: float) -> Optional[float]:
    """``body[key]`` as a float of at least ``minimum`` (None if absent), at most LARGEST_NUMBER."""
    value = body.get(key)
    if value is None:
        return None
    valid = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= minimum
    if not valid or (isinstance(value, float) and math.isnan(value)):
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:40]}..."
        raise BadRequest(f"{key} must be a number of at least {minimum:g}, got {shown}")
    return float(min(value, LARGEST_NUMBER))


def _targets(body: dict, max_targets: int) -> List[Target]:
    raw = body.get("targets")
    if not isinstance(raw, list):
        raise BadRequest("targets is missing or is not a list")
    if len(raw) > max_targets:
        raise TooLarge(f"{len(raw)} targets in one query; at most {max_targets} are allowed "
                       f"(HTTP_MAX_TARGETS: split the panel, or raise the setting)")
    targets = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("target"), str):
            raise BadRequest(f"targets[{i}] must be an object with a string 'target'")
        if item.get("hide") is True or not item["target"].strip():
            continue
        target = split_target(item["target"].strip())
        targets.append(Target(target.name, target.node, target.field, item.get("type") == "table"))
    return targets


def parse_query(body: dict, max_targets: int) -> Query:
    """Validate a ``/query`` body (SimpleJSON or JSON datasource) of at most ``max_targets`` targets."""
    window = body.get("range")
    if not isinstance(window, dict):
        raise BadRequest("range is missing or is not an object with 'from' and 'to'")
    start = parse_time(window.get("from"), "range.from")
    end = parse_time(window.get("to"), "range.to")
    if start <= 0 or end <= 0:  # data nodes read 0 and negative times as "seconds before now"
        raise BadRequest("range must be after 1970-01-01T00:00:00Z")
    if start > end:
        raise BadRequest(f"range.from ({window['from']}) is after range.to ({window['to']})")
    interval_ms = _number(body, "intervalMs", 0)
    max_points = _number(body, "maxDataPoints", 1)
    return Query(start, end, interval_ms / 1000.0 if interval_ms else None,
                 int(max_points) if max_points is not None else None, _targets(body, max_targets))


def text_filter(body: dict, *keys: str) -> str:
    """The filter text of a search-like request: the first string found under ``keys``."""
    for key in keys:
        value = body.get(key)
        if isinstance(value, dict):
            value = value.get("target")
        if isinstance(value, str):
            return value
    return ""
