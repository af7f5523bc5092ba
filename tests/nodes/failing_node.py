"""A data node whose get_data fails for the field 'broken' and takes 2 s for 'slow'."""
import sys
import time

from sisock.config import load
from sisock.datanode import DataNodeServer, data_result, field_info


class FailingNode(DataNodeServer):
    name = "failing_node"
    description = "raises inside get_data for the field 'broken'"

    def get_fields(self, start, end):
        fields = {"ok": field_info("tl"), "broken": field_info("tl")}
        return fields, {"tl": {"interval": 1.0, "field": ["ok", "broken"]}}

    def get_data(self, fields, start, end, min_stride):
        if "broken" in fields:
            raise RuntimeError("the archive disk is unreadable")
        if "slow" in fields:
            time.sleep(2)
        return data_result({"tl": ([start], {"ok": [1.0]})})


if __name__ == "__main__":
    sys.exit(FailingNode(load()).run())
