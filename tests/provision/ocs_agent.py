"""A stand-in OCS agent for the multi-host test (OCS is not installed in the guests): publishes
a 1 Hz ``temperatures`` feed as OCS's Feed.publish_message does, on the router's OCS port
(CROSSBAR_OCS_INTERFACE:CROSSBAR_OCS_PORT), reconnecting whenever the router goes away.
Run with sisock's venv: ``python ocs_agent.py TARGET``."""
import math
import sys
import time

from twisted.internet import task

from sisock import wamp
from sisock.config import load


def main(target: str) -> int:
    config = load()
    topic = f"observatory.{target}.feeds.temperatures"
    feed = {"agent_address": f"observatory.{target}", "feed_name": "temperatures", "address": topic,
            "record": True, "session_id": str(time.time()), "agent_class": "StandInAgent",
            "agg_params": {"frame_length": 60}}
    component = wamp.make_component(config, "ocs")
    sessions = []
    component.on("join", lambda session, details: sessions.append(session))
    component.on("leave", lambda session, details: sessions.remove(session))

    def publish():
        now = time.time()
        data = {"block_name": "temps", "timestamp": now, "data": {"Channel 01": 0.1 + 0.01 * math.sin(now / 60)}}
        for session in sessions:
            session.publish(topic, [data, feed])

    task.LoopingCall(publish).start(1.0)
    return wamp.run("ocs-agent", config, [component])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
