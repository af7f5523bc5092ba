"""Per-bucket aggregates on arbitrary edges: what a data node answers ``get_buckets`` with.

InfluxQL's aggregates (mean, sum, stddev, min, max, first, last, count, spread) are computed
where the data is, bucket by bucket, so a month of samples never crosses the router: each
bucket ``[edges[k], edges[k+1])`` carries its count, the sum and ``m2`` (the sum of squared
deviations from its mean, which merge exactly with Chan et al.'s update), and the time and
value of its first, minimum, maximum and last sample (:class:`sisock.decimate.Slots`). Text
and boolean fields carry count, first and last. Times on the wire are whole microseconds
since the epoch (JSON and CBOR carry them exactly; a float second resolves 0.24 µs today).

A bucket answer lists only the buckets holding samples, by index, with the columns asked for.
Parts of one field from disjoint samples (the archive, and a live feed outside the archive's
coverage) merge into exactly the buckets of all the samples (:func:`merge`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from sisock import pieces
from sisock.decimate import Slots, aggregate_edges, merge_edges

#: The columns a caller may ask for ("first" means first_t and first_v, and so on).
COLUMNS = ("count", "sum", "m2", "first", "min", "max", "last")
#: The columns a text or boolean field has.
TEXT_COLUMNS = ("count", "first", "last")
#: Most buckets one call may ask for.
MOST_BUCKETS = 1_000_000

#: Wire column -> the Slots attribute it carries.
_WIRE = {"count": ("count",), "sum": ("sum",), "m2": ("m2",), "first": ("first_t", "first_v"),
         "min": ("min_t", "min_v"), "max": ("max_t", "max_v"), "last": ("last_t", "last_v")}


class BadBuckets(ValueError):
    """Edges or columns a caller sent that cannot be used (the text says why)."""


def edges_of(raw: object) -> np.ndarray:
    """``get_buckets``' edges: at least two ascending whole microseconds, at most MOST_BUCKETS buckets."""
    try:
        edges = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadBuckets("edges must be a list of whole microseconds since the epoch") from None
    if edges.ndim != 1 or len(edges) < 2 or not np.isfinite(edges).all() or np.any(edges != np.round(edges)):
        raise BadBuckets("edges must be a list of at least two whole microseconds since the epoch")
    if len(edges) - 1 > MOST_BUCKETS:
        raise BadBuckets(f"{len(edges) - 1} buckets asked; at most {MOST_BUCKETS} per call")
    out = edges.astype(np.int64)
    if np.any(out[1:] <= out[:-1]):
        raise BadBuckets("edges must be strictly ascending")
    return out


def columns_of(raw: object) -> Sequence[str]:
    """``get_buckets``' columns: a subset of COLUMNS (None: all); count always comes."""
    if raw is None:
        return COLUMNS
    if not isinstance(raw, (list, tuple)) or not all(isinstance(c, str) and c in COLUMNS for c in raw):
        raise BadBuckets(f"columns must be a list of {', '.join(COLUMNS)}")
    return tuple(c for c in COLUMNS if c in raw or c == "count")


def microseconds(t: np.ndarray) -> np.ndarray:
    """UNIX seconds as whole microseconds (int64)."""
    return np.rint(np.asarray(t, dtype=np.float64) * 1e6).astype(np.int64)


@dataclass
class TextBuckets:
    """Count, first and last of the buckets of a text or boolean field holding samples."""

    index: np.ndarray
    count: np.ndarray
    first_t: np.ndarray
    first_v: np.ndarray
    last_t: np.ndarray
    last_v: np.ndarray


def of_samples(t_us: np.ndarray, values: np.ndarray, edges: np.ndarray):
    """The buckets of sorted samples (times in microseconds): Slots (their ``start`` the bucket's
    first edge) for numbers, :class:`TextBuckets` for text and booleans. A NaN is no sample (InfluxDB
    cannot hold one; a ring buffer pads a field that appeared later with them)."""
    values = np.asarray(values)
    if values.dtype.kind in "iuf":
        numbers = values.astype(np.float64)
        held = ~np.isnan(numbers)
        t_us = np.asarray(t_us, dtype=np.int64)
        if not held.all():
            t_us, numbers = t_us[held], numbers[held]
        return aggregate_edges(t_us, numbers, edges)
    bounds = np.searchsorted(t_us, edges)
    lo, hi = bounds[:-1], bounds[1:]
    held = np.flatnonzero(hi > lo)
    return TextBuckets(held, (hi - lo)[held], np.asarray(t_us)[lo[held]], values[lo[held]],
                       np.asarray(t_us)[hi[held] - 1], values[hi[held] - 1])


def _shifted(found, offset: int):
    """Buckets found on a run of edges starting at edge ``offset`` of the whole edges, as buckets of
    those (a :class:`TextBuckets`' index moves; Slots carry their bucket's first edge already)."""
    if isinstance(found, TextBuckets) and offset:
        return TextBuckets(found.index + offset, found.count, found.first_t, found.first_v, found.last_t,
                           found.last_v)
    return found


def around_cut(edges: np.ndarray, cut: Tuple[int, int],
               on: Callable[[np.ndarray], Dict[str, "Found"]]) -> Dict[str, "Found"]:
    """The buckets of ``edges`` without those inside ``cut`` (two of the edges): ``on(sub_edges)``
    asked for the edges before and after it, each part's buckets as buckets of the whole edges."""
    i, j = (int(k) for k in np.searchsorted(edges, cut))
    parts = [(edges[:i + 1], 0)] if i > 0 else []
    parts += [(edges[j:], j)] if j < len(edges) - 1 else []
    found: Dict[str, List[Found]] = {}
    for sub, offset in parts:
        for name, part in on(sub).items():
            found.setdefault(name, []).append(_shifted(part, offset))
    return {name: merge(found_parts, edges) for name, found_parts in found.items()}


def cut_of(raw: object, edges: np.ndarray, excluding: bool) -> Tuple[int, int]:
    """``get_buckets``' ``cut``: two of the edges ``a < b`` (the buckets between them are left out)."""
    if excluding:
        raise BadBuckets("cut comes without exclude")
    try:
        a, b = (int(x) for x in raw)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise BadBuckets("cut must be [a, b], two of the edges") from None
    i, j = np.searchsorted(edges, (a, b))
    if not a < b or j >= len(edges) or edges[i] != a or edges[j] != b:
        raise BadBuckets("cut must be [a, b], two of the edges, a < b")
    return a, b


def _plain(array: np.ndarray) -> list:
    """A JSON-safe list (NaN as None)."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        out = array.astype(object)
        out[~np.isfinite(array)] = None
        return out.tolist()
    return array.tolist()


def encode(found, edges: np.ndarray, columns: Sequence[str]) -> dict:
    """One field's answer: ``{"index": [...], column: [...]}`` with times in microseconds."""
    if isinstance(found, TextBuckets):
        out = {"index": found.index.tolist(), "count": found.count.tolist()}
        if "first" in columns:
            out.update(first_t=found.first_t.tolist(), first_v=found.first_v.tolist())
        if "last" in columns:
            out.update(last_t=found.last_t.tolist(), last_v=found.last_v.tolist())
        return out
    out = {"index": (np.searchsorted(edges, found.start, side="right") - 1).tolist()}
    for column in columns:
        for attribute in _WIRE[column]:
            array = np.asarray(getattr(found, attribute))
            if attribute.endswith("_t"):
                array = np.asarray(array, dtype=np.int64)
            out[attribute] = _plain(array)
    return out


def decode(answer: dict, edges: np.ndarray):
    """One field's answer back as Slots (its ``start`` the buckets' first edges; columns not sent are
    unknown) or TextBuckets."""
    index = np.asarray(answer.get("index") or [], dtype=np.int64)
    n = len(index)

    def column(name: str, dtype) -> np.ndarray:
        raw = answer.get(name)
        if raw is None:
            return np.full(n, np.nan) if dtype is float else np.zeros(n, dtype=np.int64)
        if dtype is object:
            return np.asarray(raw, dtype=object)
        return np.asarray([np.nan if v is None else v for v in raw] if dtype is float else raw, dtype=dtype)

    text = any(isinstance(v, (str, bool)) for v in (answer.get("first_v") or []) + (answer.get("last_v") or []))
    if text:
        return TextBuckets(index, column("count", np.int64), column("first_t", np.int64), column("first_v", object),
                           column("last_t", np.int64), column("last_v", object))
    return Slots(np.asarray(edges)[index], column("count", np.int64),
                 column("first_t", np.int64), column("first_v", float), column("min_t", np.int64),
                 column("min_v", float), column("max_t", np.int64), column("max_v", float),
                 column("last_t", np.int64), column("last_v", float), column("sum", float), column("m2", float))


Found = Union[Slots, "TextBuckets"]


def merge(parts: Sequence[Found], edges: np.ndarray) -> Found:
    """The buckets of one field from parts over disjoint samples (all Slots, or all TextBuckets)."""
    text = [p for p in parts if isinstance(p, TextBuckets) and len(p.index)]
    numbers = [p for p in parts if isinstance(p, Slots) and len(p)]
    if text:
        return text[0] if len(text) == 1 else _merge_text(text)
    if not numbers:
        return Slots.empty()
    return numbers[0] if len(numbers) == 1 else merge_edges(numbers, edges)


def _merge_text(parts: List[TextBuckets]) -> TextBuckets:
    index = np.concatenate([p.index for p in parts])
    order = np.lexsort((np.concatenate([p.first_t for p in parts]), index))
    index = index[order]
    columns = {name: np.concatenate([getattr(p, name) for p in parts])[order]
               for name in ("count", "first_t", "first_v", "last_t", "last_v")}
    starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
    ends = np.r_[starts[1:], len(index)]
    last = np.array([s + int(np.argmax(columns["last_t"][s:e])) for s, e in zip(starts, ends)], dtype=np.int64)
    return TextBuckets(index[starts], np.add.reduceat(columns["count"], starts), columns["first_t"][starts],
                       columns["first_v"][starts], columns["last_t"][last], columns["last_v"][last])


def answer(found: Dict[str, Found], edges: np.ndarray, columns: Sequence[str],
           finalized_until: Optional[Dict[str, float]] = None, revisions: Optional[Dict[str, int]] = None) -> dict:
    """The whole ``get_buckets`` answer of a node."""
    return {"buckets": {name: encode(b, edges, columns) for name, b in found.items()},
            "finalized_until": dict(finalized_until or {}), "revisions": dict(revisions or {})}


def split(answer: dict, piece_bytes: int = pieces.PIECE_BYTES) -> List[dict]:
    """A ``get_buckets`` answer as answers of about ``piece_bytes`` each (by runs of each field's
    buckets), which :func:`join` puts back together; the answer alone when it is small."""
    size = pieces.encoded_size(answer)
    if size <= pieces.WHOLE_BYTES:
        return [answer]
    fields = answer["buckets"]
    total = sum(len(f["index"]) for f in fields.values()) or 1
    per_bucket = size / total
    out: List[dict] = []
    for name, columns in fields.items():
        n = len(columns["index"])
        step = max(1, int(piece_bytes // per_bucket))
        for a in range(0, max(n, 1), step):
            out.append({"buckets": {name: {k: v[a:a + step] for k, v in columns.items()}},
                        "finalized_until": answer.get("finalized_until", {}),
                        "revisions": answer.get("revisions", {})})
    return out or [answer]


def join(parts: Sequence[dict]) -> dict:
    """One ``get_buckets`` answer from the pieces :func:`split` made, in order."""
    fields: Dict[str, Dict[str, list]] = {}
    until: dict = {}
    revisions: dict = {}
    for part in parts:
        if not isinstance(part, dict):
            continue
        until.update(part.get("finalized_until") or {})
        revisions.update(part.get("revisions") or {})
        for name, columns in (part.get("buckets") or {}).items():
            into = fields.setdefault(name, {})
            for key, values in columns.items():
                into.setdefault(key, []).extend(values)
    return {"buckets": fields, "finalized_until": until, "revisions": revisions}
