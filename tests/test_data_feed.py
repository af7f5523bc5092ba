"""``sisock data-feed``: OCS feed messages published on the router's OCS port are served live."""
from __future__ import annotations

import time

import numpy as np
import pytest

from sisock import wamp
from sisock.servers.data_feed import FeedCache, MessageError
from sisock.wamp_thread import ThreadedSession
from tests.support import wait_until

TARGET, FEED, NAME = "LSA22YE", "temperatures", "bluefors_thermometry"
TOPIC = f"observatory.{TARGET}.feeds.{FEED}"
GET_FIELDS, GET_DATA = wamp.get_fields_uri(NAME), wamp.get_data_uri(NAME)
ENV = {"TARGET": TARGET, "FEED": FEED, "NAME": NAME, "DESCRIPTION": "LS372 in the Bluefors"}


def feed_info(target: str = TARGET) -> dict:
    """The ``feed`` half of an OCS event, as OCS's Feed.encoded() gives it."""
    return {"agent_address": f"observatory.{target}", "feed_name": FEED,
            "address": f"observatory.{target}.feeds.{FEED}", "record": True, "session_id": "1700000000.1",
            "agent_class": "Lakeshore372Agent", "agg_params": {"frame_length": 60}}


def start_feed(procs, **env):
    procs.start("hub").wait_for("hub ready")
    server = procs.start("data-feed", env=dict(ENV, **env))
    server.wait_for(f"subscribed to {TOPIC}")
    server.wait_for(f"added data node {NAME}")
    return server


def publish(ocs, data, feed=None) -> None:
    """Publish as an OCS agent does: one argument, the pair [data, feed]."""
    ocs.publish(TOPIC, [data, feed_info() if feed is None else feed])


def served(client, fields, start=-600, end=0):
    return client.call(GET_DATA, fields, start, end)


def test_block_and_single_sample_messages_are_served(procs, client, ocs):
    start_feed(procs)
    now = time.time()
    t = [now - 3, now - 2, now - 1]
    publish(ocs, {"temps": {"block_name": "temps", "timestamps": t,
                            "data": {"Channel 01": [0.11, 0.12, 0.13], "Channel 02": [4.0, 4.5, 5.0]}},
                  "heaters": {"block_name": "heaters", "timestamps": [now - 2.5], "data": {"Heater Power": [0.5]}}})
    publish(ocs, {"block_name": "status", "timestamp": now - 1.5,
                  "data": {"State": "ramping", "Setpoint": 0.1, "Heater On": True}})

    wanted = ["channel_01", "channel_02", "heater_power", "state", "setpoint", "no_such_field"]
    answer = wait_until(lambda: (lambda a: a if len(a["data"]) == 5 else None)(served(client, wanted)), 10,
                        "all five fields to be served")
    assert answer["data"]["channel_01"] == [0.11, 0.12, 0.13]
    assert answer["data"]["channel_02"] == [4.0, 4.5, 5.0]
    assert answer["timeline"]["temps"]["t"] == t
    assert sorted(answer["timeline"]["temps"]["fields"]) == ["channel_01", "channel_02"]
    assert answer["data"]["heater_power"] == [0.5] and answer["timeline"]["heaters"]["t"] == [now - 2.5]
    assert answer["data"]["state"] == ["ramping"] and answer["data"]["setpoint"] == [0.1]

    fields, timelines = client.call(GET_FIELDS, -600, 0)
    ours = {"channel_01", "channel_02", "heater_power", "state", "setpoint", "heater_on"}
    archive = {f"{TOPIC}.{key}" for key in ("Channel 01", "Channel 02", "Heater Power", "State", "Setpoint",
                                             "Heater On")}
    assert set(fields) == ours | archive
    assert fields["channel_01"]["timeline"] == "temps" and fields["channel_01"]["type"] == "number"
    assert fields["state"]["type"] == "string" and fields["heater_on"]["type"] == "bool"
    assert timelines["temps"]["interval"] == pytest.approx(1.0)
    assert {"name": NAME, "description": "LS372 in the Bluefors"} in client.call(wamp.HUB_LIST)


def test_fields_also_answer_under_the_archive_names(procs, client, ocs):
    """The aggregator's name, observatory.<TARGET>.feeds.<FEED>.<key> with the key's case kept,
    answers with the same samples as the lower-cased name; a wrongly cased one does not."""
    start_feed(procs)
    now = time.time()
    t = [now - 2, now - 1]
    publish(ocs, {"temps": {"block_name": "temps", "timestamps": t,
                            "data": {"Channel_01_T": [0.11, 0.12], "Channel_02_R": [5.0, 6.0]}}})
    full, full_2 = f"{TOPIC}.Channel_01_T", f"{TOPIC}.Channel_02_R"
    wanted = [full, "channel_01_t", full_2, f"{TOPIC}.channel_01_t", f"{TOPIC}.CHANNEL_01_T"]
    answer = wait_until(lambda: (lambda a: a if len(a["data"]) == 3 else None)(served(client, wanted)), 10,
                        "the archive names to be served")
    assert answer["data"][full] == answer["data"]["channel_01_t"] == [0.11, 0.12]
    assert answer["data"][full_2] == [5.0, 6.0]
    assert answer["timeline"]["temps"]["t"] == t
    assert sorted(answer["timeline"]["temps"]["fields"]) == sorted([full, "channel_01_t", full_2])
    fields, timelines = client.call(GET_FIELDS, -600, 0)
    assert fields[full]["timeline"] == "temps" and fields[full]["type"] == "number"
    assert full in timelines["temps"]["field"] and "channel_01_t" in timelines["temps"]["field"]


def test_ocs_transport_option(procs, client, ocs):
    start_feed(procs, DATA_FEED_TRANSPORT="ocs")
    now = time.time()
    publish(ocs, {"block_name": "b", "timestamps": [now - 1], "data": {"Value": [7.0]}})
    answer = wait_until(lambda: served(client, ["value"])["data"].get("value"), 10, "the sample over the OCS port")
    assert answer == [7.0]


def test_foreign_and_malformed_messages_are_dropped(procs, client, ocs):
    server = start_feed(procs)
    now = time.time()
    publish(ocs, {"block_name": "b", "timestamp": now - 2, "data": {"Intruder": 1.0}}, feed=feed_info("OTHER"))
    bad = [
        "not a dict",
        {"block_name": "b", "timestamps": [now, now], "data": {"x": [1.0]}},
        {"block_name": "b", "timestamps": ["yesterday"], "data": {"x": [1.0]}},
        {"block_name": "b", "timestamp": now, "data": {"x": {"nested": 1}}},
        {"b": {"block_name": "b", "timestamps": [now]}},
    ]
    for data in bad:
        publish(ocs, data)
    ocs.publish(TOPIC, {"a": 1}, {"b": 2}, {"c": 3})
    publish(ocs, {"block_name": "b", "timestamp": now - 1, "data": {"Good": 3.0}})

    wait_until(lambda: served(client, ["good"])["data"].get("good"), 10, "the good sample")
    assert served(client, ["intruder", "x", "good"])["data"] == {"good": [3.0]}
    assert server.alive()
    assert "ignoring" in server.wait_for("observatory.OTHER")
    # the first malformed message is logged; the rest are held back (at most a line a minute)
    server.wait_for("dropped a malformed message")
    assert server.output.count("dropped a malformed message") == 1


def test_samples_older_than_buffer_time_are_not_served(procs, client, ocs):
    start_feed(procs, BUFFER_TIME="30")
    now = time.time()
    t = [now - 100 + i for i in range(100)]
    publish(ocs, {"block_name": "b", "timestamps": t, "data": {"Ramp": list(range(100))}})
    times = wait_until(lambda: served(client, ["ramp"], -1000, 0)["timeline"].get("b", {}).get("t"), 10, "samples")
    assert 28 <= len(times) <= 30 and min(times) >= now - 31


def test_cache_survives_a_router_restart_and_the_feed_resumes(own_router, own_procs, own_client):
    server = start_feed(own_procs)
    agent = ThreadedSession(own_router.config, transport="ocs").start()
    try:
        assert agent.wait_connected(30)
        now = time.time()
        publish(agent, {"block_name": "b", "timestamp": now - 2, "data": {"Value": 1.0}})
        wait_until(lambda: served(own_client, ["value"])["data"].get("value") == [1.0], 10, "the first sample")
        own_router.restart()
        wait_until(lambda: server.output.count(f"subscribed to {TOPIC}") == 2, 60, "the server to subscribe again")
        assert agent.wait_connected(60) and own_client.wait_connected(60)
        publish(agent, {"block_name": "b", "timestamp": now - 1, "data": {"Value": 2.0}})
        wait_until(lambda: served(own_client, ["value"])["data"].get("value") == [1.0, 2.0], 10,
                   "the cached sample and the new one")
    finally:
        agent.stop()


def test_missing_target_is_a_clear_error(procs):
    server = procs.start("data-feed", env={"FEED": FEED, "NAME": NAME})
    assert server.proc.wait(30) == 2
    assert "TARGET is not set" in server.output


# -- the cache itself (in-process, with a chosen clock) ------------------------


def block_message(t0: float, n: int, fields, name: str = "b") -> dict:
    t = [t0 + i for i in range(n)]
    return {name: {"block_name": name, "timestamps": t, "data": {f: [float(i) for i in range(n)] for f in fields}}}


def test_trimming_keeps_exactly_buffer_time():
    cache = FeedCache(f"observatory.{TARGET}", buffer_time=60)
    for k in range(10):
        cache.add(block_message(1000 + 10 * k, 10, ["v"]), feed_info(), now=1000 + 10 * k + 10)
    t = cache.window(["v"], 0, 1e10)["timeline"]["b"]["t"]
    assert t[0] == 1100 - 60 and t[-1] == 1099 and len(t) == 60
    cache.add(block_message(2000, 1, ["w"], name="c"), feed_info(), now=2000)
    assert cache.fields(0, 1e10, now=2000)[0].keys() == {"w"}


def test_memory_stays_bounded_with_1000_fields():
    """1 Hz samples of 1 000 fields for 20 × BUFFER_TIME: the buffers stop growing."""
    buffer_time, per_message = 60, 10
    fields = [f"Channel {i:04d}" for i in range(1000)]
    cache = FeedCache(f"observatory.{TARGET}", buffer_time)
    sizes = []
    for k in range(20 * buffer_time // per_message):
        t0 = 1e9 + k * per_message
        cache.add(block_message(t0, per_message, fields), feed_info(), now=t0 + per_message)
        sizes.append(cache.nbytes)
    rows = buffer_time + per_message
    bound = 2 * rows * 8 * (len(fields) + 1)  # capacity at most twice the live rows, 8-byte cells
    assert max(sizes) <= bound
    assert max(sizes[len(sizes) // 2:]) == max(sizes[: len(sizes) // 2])  # no growth in the second half
    assert len(cache.fields(0, 1e10, now=1e9 + 20 * buffer_time)[0]) == 1000


def test_memory_stays_bounded_when_field_names_keep_changing():
    """An agent that renames its fields every message: old names leave with their samples."""
    cache = FeedCache(f"observatory.{TARGET}", buffer_time=5)
    sizes = []
    for k in range(200):
        names = [f"f{k}_{i}" for i in range(100)]
        cache.add({"block_name": "b", "timestamp": 1e9 + k, "data": {n: 1.0 for n in names}}, feed_info(),
                  now=1e9 + k)
        sizes.append(cache.nbytes)
    assert max(sizes[100:]) <= max(sizes[:100])
    assert len(cache.fields(0, 1e10, now=1e9 + 199)[0]) <= 100 * 6


def test_unsorted_late_and_future_samples():
    cache = FeedCache(f"observatory.{TARGET}", buffer_time=3600)
    t0 = 1e9
    assert cache.add({"block_name": "b", "timestamps": [t0 + 3, t0 + 1, t0 + 2], "data": {"v": [3, 1, 2]}},
                     feed_info(), now=t0 + 3) == (3, 0)
    assert cache.add({"block_name": "b", "timestamps": [t0 + 2.5, t0 + 4], "data": {"v": [9, 4]}},
                     feed_info(), now=t0 + 4) == (1, 1)
    assert cache.add({"block_name": "b", "timestamps": [t0 + 5, t0 + 1e6], "data": {"v": [5, 0]}},
                     feed_info(), now=t0 + 5) == (1, 1)  # a clock a week ahead
    answer = cache.window(["v"], 0, 1e10)
    assert answer["timeline"]["b"]["t"].tolist() == [t0 + 1, t0 + 2, t0 + 3, t0 + 4, t0 + 5]
    assert answer["data"]["v"].tolist() == [1, 2, 3, 4, 5]


def test_text_into_a_number_field_drops_the_whole_message():
    cache = FeedCache(f"observatory.{TARGET}", buffer_time=1e6)
    cache.add({"a": {"block_name": "a", "timestamps": [1e9], "data": {"u": [0.5]}},
               "b": {"block_name": "b", "timestamps": [1e9], "data": {"v": [1.0], "w": [2.0]}}}, feed_info(), now=1e9)
    with pytest.raises(MessageError, match="block 'b'"):
        cache.add({"a": {"block_name": "a", "timestamps": [1e9 + 1], "data": {"u": [0.6]}},
                   "b": {"block_name": "b", "timestamps": [1e9 + 1], "data": {"v": [5.0], "w": ["high"]}}},
                  feed_info(), now=1e9)
    answer = cache.window(["u", "v", "w"], 0, 1e10)
    assert {k: v.tolist() for k, v in answer["data"].items()} == {"u": [0.5], "v": [1.0], "w": [2.0]}


def test_a_field_that_moves_to_another_block_follows_it():
    cache = FeedCache(f"observatory.{TARGET}", buffer_time=1e6)
    cache.add({"block_name": "a", "timestamp": 1e9, "data": {"v": 1.0, "w": 1.0}}, feed_info(), now=1e9)
    cache.add({"block_name": "c", "timestamp": 1e9 + 1, "data": {"v": 2.0}}, feed_info(), now=1e9)
    fields, timelines = cache.fields(0, 1e10, now=1e9)
    assert fields["v"]["timeline"] == "c" and timelines["a"]["field"] == ["w"]
    assert np.array_equal(cache.window(["v"], 0, 1e10)["data"]["v"], [2.0])
