"""The housekeeping frame layout (docs/design.md, "The g3 housekeeping format"), read with plain ``spt3g``.

Every frame is ``G3FrameType.Housekeeping`` with ``hkagg_type`` 0 (session),
1 (status: the providers) or 2 (data: one provider's blocks of samples).
"""
from __future__ import annotations

from typing import Dict, Iterator, Tuple

import numpy as np
from spt3g import core

SESSION, STATUS, DATA = 0, 1, 2
HKAGG_VERSION = 2
#: G3Time ticks per second.
TICKS = float(core.G3Units.s)


def kind(frame: core.G3Frame) -> int:
    """The frame's ``hkagg_type``, or -1 for a frame that is not housekeeping."""
    if frame.type != core.G3FrameType.Housekeeping or "hkagg_type" not in frame:
        return -1
    return int(_plain(frame["hkagg_type"]))


def providers(frame: core.G3Frame) -> Dict[int, str]:
    """``{prov_id: description}`` of a status frame."""
    return {int(_plain(p["prov_id"])): str(_plain(p["description"])) for p in frame["providers"]}


def _plain(value):
    """A G3Int/G3String/... as the Python value it wraps (frames unwrap these, maps do not)."""
    return getattr(value, "value", value)


def blocks(frame: core.G3Frame) -> Iterator[Tuple[str, core.G3TimesampleMap]]:
    """``(block name, G3TimesampleMap)`` pairs of a data frame."""
    return zip(frame["block_names"], frame["blocks"])


def ticks(block: core.G3TimesampleMap) -> np.ndarray:
    """A block's sample times in G3Time ticks: an int64 view of the vector, no copy."""
    return np.asarray(block.times, dtype=np.int64)


def times(block: core.G3TimesampleMap) -> np.ndarray:
    """A block's sample times in UNIX seconds."""
    return ticks(block) / TICKS


_LAYOUTS: Dict[Tuple[str, ...], Tuple[Tuple[str, ...], Tuple[str, ...]]] = {}


def layout(block: core.G3TimesampleMap) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """``(keys, types)`` of a block; the same layout recurs frame after frame, so each is typed once."""
    keys = tuple(block.keys())
    found = _LAYOUTS.get(keys)
    if found is None:
        if len(_LAYOUTS) > 10_000:  # a damaged archive's odd layouts: keep the cache bounded
            _LAYOUTS.clear()
        found = _LAYOUTS[keys] = (keys, tuple(value_type(block[k]) for k in keys))
    return found


#: A column's kind as a scan reads it -> (its field type in ``get_fields``, docs/design.md; its InfluxDB
#: field type, as the OCS publisher writes a Python float, int, str or bool).
KINDS = {"number": ("number", "float"), "integer": ("number", "integer"), "string": ("string", "string"),
         "bool": ("bool", "boolean")}
#: The kinds of numeric columns.
NUMBERS = ("number", "integer")


def value_type(vector) -> str:
    """The kind (:data:`KINDS`) of a G3 vector: ``number`` (doubles), ``integer``, ``string`` or ``bool``."""
    if isinstance(vector, core.G3VectorString):
        return "string"
    if isinstance(vector, core.G3VectorBool):
        return "bool"
    if isinstance(vector, core.G3VectorInt):
        return "integer"
    return "number"


def agent_of(description: str) -> str:
    """``observatory.<agent>`` of a provider description ``observatory.<agent>.feeds.<feed>``."""
    return ".".join(description.split(".")[:2])


def short_name(description: str, field: str) -> str:
    """The short form ``observatory.<agent>.<field>`` of a field."""
    return f"{agent_of(description)}.{field}"
