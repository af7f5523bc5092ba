"""An aggregator for the joined-series tests and benchmark: it writes .g3 frames to a growing
file as OCS's aggregator does and publishes OCS-shaped messages of the same samples on the
router's OCS port."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence

from sisock.config import load
from sisock.g3 import format as fmt
from sisock.g3.index import open_index
from sisock.g3.writer import Archive, HKFileWriter, Provider, sample_times, values
from sisock.wamp_thread import ThreadedSession


class Aggregator:
    """Writes the archive's files frame by frame and publishes the live side of the same samples."""

    def __init__(self, top: Path, ocs: ThreadedSession, providers: Sequence[Provider], frame: float = 3.0) -> None:
        self.top = top
        self.ocs = ocs
        self.providers = list(providers)
        self.frame = frame
        self.layout = Archive(self.providers, 0, 0)
        self.writer = None

    def new_file(self, t0: float) -> Path:
        if self.writer is not None:
            self.writer.close()
        path = self.layout.file_path(self.top, t0)
        self.writer = HKFileWriter(path, self.providers, t0)
        return path

    def write(self, t0: float, t1: float) -> None:
        """Frames of every provider over [t0, t1), each flushed as the aggregator does."""
        a = t0
        while a < t1:
            b = min(a + self.frame, t1)
            for prov_id in range(len(self.providers)):
                self.writer.data(prov_id, a, b)
            self.writer.flush()
            a = b

    def publish(self, provider: Provider, t0: float, t1: float, per_message: float = 1.0) -> None:
        """OCS messages (data, feed) of ``provider``'s samples over [t0, t1), as an agent publishes them."""
        agent, feed = provider.description.rsplit(".feeds.", 1)
        info = {"agent_address": agent, "feed_name": feed, "address": provider.description, "record": True,
                "session_id": "1.0", "agent_class": "TestAgent", "agg_params": {"frame_length": self.frame}}
        a = t0
        while a < t1:
            b = min(a + per_message, t1)
            data = {}
            for block in provider.blocks:
                ticks = sample_times(block.rate, a, b)
                data[block.name] = {"block_name": block.name, "timestamps": (ticks / fmt.TICKS).tolist(),
                                    "data": {f: values(provider.description, block, f, ticks).tolist()
                                             for f in block.fields}}
            self.ocs.publish(provider.description, [data, info])
            a = b

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def truth(provider: Provider, field: str, t0: float, t1: float):
    """Every sample of a field written or published over [t0, t1): times (s) and values."""
    block = next(b for b in provider.blocks if field in b.fields)
    ticks = sample_times(block.rate, t0, t1)
    t = ticks / fmt.TICKS
    return t, values(provider.description, block, field, ticks)


def indexed_until(env: Dict[str, str], description: str) -> float:
    """The end of the newest frame the index of ``env`` holds for a provider (0 when none)."""
    index = open_index(load(env))
    try:
        return index.indexed_until([description]).get(description, 0.0)
    finally:
        index.close()
