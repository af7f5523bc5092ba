"""A data node with one fast field, ``fast``: a sample every ``1 / BIG_NODE_RATE`` seconds (10 Hz by
default) over whatever window is asked, so any answer size can be asked of it."""
import os
import sys

import numpy as np

from sisock.config import load
from sisock.datanode import DataNodeServer, data_result, field_info

RATE = float(os.environ.get("BIG_NODE_RATE", "10"))


class BigNode(DataNodeServer):
    name = "big_node"
    description = "a fast field over any window, for answers of any size"

    def get_fields(self, start, end):
        return {"fast": field_info("tl", units="V")}, {"tl": {"interval": 1.0 / RATE, "field": ["fast"]}}

    def get_data(self, fields, start, end, min_stride):
        if "fast" not in fields:
            return data_result({})
        t = np.arange(np.ceil(start * RATE), np.ceil(end * RATE)) / RATE
        return data_result({"tl": (t, {"fast": np.sin(t * 7.3)})})  # fast: most slots keep four


if __name__ == "__main__":
    sys.exit(BigNode(load()).run())
