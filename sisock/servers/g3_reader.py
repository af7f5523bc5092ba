"""``sisock g3-reader``: the data node ``g3_reader``, serving the indexed .g3 housekeeping archive.

Fields are named ``<provider description>.<field>``; the short form
``observatory.<agent>.<field>`` works too. The index comes from
``sisock g3-file-scanner`` (MySQL/MariaDB when SQL_HOST is set, else SQLite).
"""
from __future__ import annotations

from typing import List, Optional

from sisock.config import Config
from sisock.datanode import DataNodeServer, data_result
from sisock.g3.index import open_index
from sisock.g3.reader import Reader


class G3ReaderServer(DataNodeServer):
    """Answers from the index and the files; reads only the frames a request overlaps."""

    name = "g3_reader"
    description = "Housekeeping archive (.g3 files)"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.reader = Reader(open_index(config), config.g3_cache_mb)

    def get_fields(self, start: float, end: float):
        return self.reader.fields(start, end)

    def get_data(self, fields: List[str], start: float, end: float, min_stride: Optional[float]):
        """The samples, each timeline's ``finalized_until`` the newest time the index holds for its
        provider (taken before reading, so nothing after it is missing from the answer's sources);
        a known field without samples in the window comes as an empty timeline carrying it."""
        until = self.reader.indexed_until(fields)
        answer = data_result(self.reader.data(fields, start, end, min_stride, self.config.max_points))
        for timeline in answer["timeline"].values():
            marks = [until[f] for f in timeline["fields"] if f in until]
            timeline["finalized_until"] = min(marks) if marks else None
        for name in sorted(set(until) - set(answer["data"])):
            answer["timeline"][name] = {"t": [], "finalized_until": until[name], "fields": [name]}
            answer["data"][name] = []
        return answer


def main(args, config: Config) -> int:
    """Serve the archive until SIGTERM."""
    return G3ReaderServer(config).run()
