"""Each provider's revision: it changes whenever samples the index already held for it may have changed.

The index's generation (:meth:`~sisock.g3.index.Index.generation`) changes with
every scanner transaction, appends included: too often to keep the results of
finalized slots by. A provider's revision changes only when what the index held
up to its newest indexed time (``finalized_until``) may differ afterwards: a file
of it read again from its start (rewritten, repaired, replaced), a file removed,
or frames that begin before its newest indexed time (a file copied in late, an
aggregator's clock set back). Appends after the newest time only move
``finalized_until``. So a result over slots that end at or before
``finalized_until`` stays exact while the revision is the same
(:mod:`sisock.http.results` keeps them so).

Values are random 53-bit numbers (exact in any JSON reader), never counted up: a
result kept from another index, or from before an index was made anew, is never
taken for current.
"""
from __future__ import annotations

import random
from typing import Dict, Iterable, List, Optional, Sequence

from sisock.g3.filescan import FrameEntry

_random = random.SystemRandom()


def new_value() -> int:
    """A revision no index has had (with overwhelming probability)."""
    return _random.getrandbits(53)


def revise(cur, descriptions: Iterable[str]) -> None:
    """Give each of ``descriptions`` a new revision (its row is made if it has none)."""
    for description in sorted(set(descriptions)):
        if cur.one("SELECT 1 FROM revisions WHERE description = ?", (description,)) is None:
            cur.execute("INSERT INTO revisions (description, value) VALUES (?, ?)", (description, new_value()))
        else:
            cur.execute("UPDATE revisions SET value = ? WHERE description = ?", (new_value(), description))


def before_store(cur, previous_id: Optional[int], from_start: bool, providers: Dict[int, str],
                 frames: Sequence[FrameEntry]) -> None:
    """In a file's transaction, before its scan is stored: revise the providers whose held samples
    it may change. A file read from its start replaces its old rows (every provider it had or has);
    otherwise only frames beginning before their provider's newest indexed time change anything. A
    provider seen for the first time gets its first revision."""
    touched: List[str] = []
    if previous_id is not None and from_start:
        touched += [r[0] for r in cur.all("SELECT DISTINCT description FROM feeds WHERE file_id = ?", (previous_id,))]
        touched += list(providers.values())
    first: Dict[str, float] = {}
    for frame in frames:
        description = providers.get(frame.prov_id)
        if description is not None:
            first[description] = min(first.get(description, frame.t_start), frame.t_start)
    for description, t_start in sorted(first.items()):
        newest = cur.one("SELECT MAX(t_end) FROM feeds WHERE description = ?", (description,))
        if newest is not None and newest[0] is not None and t_start < float(newest[0]):
            touched.append(description)
    fresh = [d for d in sorted(set(providers.values()) - set(touched))
             if cur.one("SELECT 1 FROM revisions WHERE description = ?", (d,)) is None]
    revise(cur, touched + fresh)


def before_remove(cur, file_id: int) -> None:
    """In a removed file's transaction: revise every provider it held."""
    revise(cur, [r[0] for r in cur.all("SELECT DISTINCT description FROM feeds WHERE file_id = ?", (file_id,))])


def of(cur, descriptions: Sequence[str]) -> Dict[str, int]:
    """``{description: revision}`` of those that have one."""
    if not descriptions:
        return {}
    marks = ", ".join("?" * len(descriptions))
    return {d: int(v) for d, v in cur.all(f"SELECT description, value FROM revisions WHERE description IN ({marks})",
                                          tuple(descriptions))}


def fill(cur, dialect: str) -> None:
    """Schema version 8: a first revision for every provider the index holds."""
    revise(cur, [r[0] for r in cur.all("SELECT DISTINCT description FROM feeds WHERE description IS NOT NULL AND "
                                       "description NOT IN (SELECT description FROM revisions)")])
