"""``get_data`` answers in pieces that each fit well within the router's message limit.

The router drops a session that sends one message larger than its ``max_message_size``
(:data:`sisock.wamp.MAX_MESSAGE`), which for a data node means every panel of every user
fails until it rejoins. So a data node sends a large answer as WAMP progressive call results
(autobahn's ``details.progress``, the caller's ``on_progress``): each piece is itself a valid
``get_data`` answer holding consecutive samples of some timelines, and the caller joins them
back in order. A caller that does not take progressive results gets an error for an answer
too large to send, never a dropped session.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np
import orjson

#: Bytes a piece aims at (encoded as JSON; WAMP's binary serializers are smaller).
PIECE_BYTES = 1 << 20
#: Bytes an answer may take before it is cut into pieces.
WHOLE_BYTES = 2 * PIECE_BYTES


class TooLarge(ValueError):
    """An answer that cannot be cut to fit (one sample larger than a piece may be)."""


def encoded_size(answer: dict) -> int:
    """The bytes of ``answer`` as JSON (what the router's limit is about, within a few per cent)."""
    return len(orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY))


def split(answer: dict, piece_bytes: int = PIECE_BYTES, whole_bytes: int = WHOLE_BYTES) -> List[dict]:
    """``answer`` as answers of about ``piece_bytes`` each, which :func:`join` puts back together;
    the answer itself, alone, when it takes at most ``whole_bytes``. TooLarge if a piece
    cannot be made small enough (a single sample of several pieces' size)."""
    size = encoded_size(answer)
    if size <= whole_bytes:
        return [answer]
    data = answer.get("data", {})
    timelines = answer.get("timeline", {})
    values = sum(len(t.get("t", ())) * (1 + len(t.get("fields", ()))) for t in timelines.values())
    per_value = size / max(values, 1)
    pieces: List[dict] = []
    current: dict = {"data": {}, "timeline": {}}
    room = float(piece_bytes)
    for name, timeline in timelines.items():
        t = timeline.get("t", [])
        fields = [f for f in timeline.get("fields", []) if f in data]
        width = per_value * (1 + len(fields))
        a = 0
        while True:
            b = min(len(t), a + max(1, int(room // width)))
            current["timeline"][name] = {"t": t[a:b], "finalized_until": timeline.get("finalized_until"),
                                         "fields": list(fields), **_revision(timeline)}
            current["data"].update({f: data[f][a:b] for f in fields})
            room -= (b - a) * width
            a = b
            if room < width:  # full: the next samples go to a new piece
                pieces.append(current)
                current, room = {"data": {}, "timeline": {}}, float(piece_bytes)
            if a >= len(t):
                break
    if current["timeline"]:
        pieces.append(current)
    if any(encoded_size(piece) > whole_bytes for piece in pieces):
        raise TooLarge(f"a single sample takes more than {whole_bytes} bytes")
    return pieces


def _revision(timeline: dict) -> dict:
    """A timeline's ``revision`` entry, if it has one (:mod:`sisock.g3.revisions`)."""
    return {"revision": timeline["revision"]} if timeline.get("revision") is not None else {}


def _array(values: Sequence) -> np.ndarray:
    """Numbers (None as NaN) as floats, anything else (text) as objects."""
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return np.asarray(values, dtype=object)


def join(pieces: Sequence[dict]) -> dict:
    """One answer from the pieces :func:`split` made (in the order they came), its times and
    values as numpy arrays: a piece's lists become arrays as soon as they arrive, so a large
    answer costs its numbers' bytes, not a Python object per value."""
    timelines: Dict[str, Tuple[List[np.ndarray], dict]] = {}
    data: Dict[str, List[np.ndarray]] = {}
    for piece in pieces:
        if not isinstance(piece, dict):
            continue
        piece_data = piece.get("data")
        if not isinstance(piece_data, dict):
            piece_data = {}
        for name, timeline in (piece.get("timeline") or {}).items():
            if not isinstance(timeline, dict):
                continue
            times, info = timelines.setdefault(name, ([], {"finalized_until": timeline.get("finalized_until"),
                                                           "fields": [], **_revision(timeline)}))
            times.append(np.asarray(timeline.get("t") if timeline.get("t") is not None else [], dtype=float))
            for field in timeline.get("fields") or []:
                if field not in info["fields"]:
                    info["fields"].append(field)
                if field in piece_data:
                    data.setdefault(field, []).append(_array(piece_data[field]))
    answer: dict = {"data": {}, "timeline": {}}
    for name, (times, info) in timelines.items():
        answer["timeline"][name] = dict(info, t=np.concatenate(times) if times else np.empty(0))
    for field, parts in data.items():
        kinds = {p.dtype.kind for p in parts if len(p)}
        answer["data"][field] = np.concatenate(parts) if kinds <= {"f"} else \
            np.concatenate([p.astype(object) for p in parts])
    return answer
