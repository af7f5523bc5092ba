"""The hub, the DataNodeServer base and the WAMP plumbing, with a real router."""
from __future__ import annotations

import threading

import pytest
from autobahn.wamp.exception import ApplicationError

from sisock import wamp
from tests.support import wait_until


def node_names(client):
    return sorted(n["name"] for n in client.call(wamp.HUB_LIST))


def test_add_subtract_list_and_topics(procs, client):
    procs.start("hub").wait_for("hub ready")
    events = []
    client.subscribe(wamp.TOPIC_ADDED, lambda info: events.append(("added", info)))
    client.subscribe(wamp.TOPIC_SUBTRACTED, lambda info: events.append(("subtracted", info)))

    own_id = client.session._session_id
    assert client.call(wamp.HUB_ADD, "probe", "a test node", own_id) is True
    assert {"name": "probe", "description": "a test node"} in client.call(wamp.HUB_LIST)
    assert client.call(wamp.HUB_SUBTRACT, "probe", own_id) is True
    assert "probe" not in node_names(client)
    wait_until(lambda: len(events) >= 2, 10, "both hub topics")
    assert events[:2] == [("added", {"name": "probe", "description": "a test node"}),
                          ("subtracted", {"name": "probe", "description": "a test node"})]
