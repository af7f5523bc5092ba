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
        return data_result(self.reader.data(fields, start, end, min_stride, self.config.max_points))


def main(args, config: Config) -> int:
    """Serve the archive until SIGTERM."""
    return G3ReaderServer(config).run()
