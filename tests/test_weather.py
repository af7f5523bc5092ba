"""The weather example server and the DataNodeServer base, through a real router."""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from autobahn.wamp.exception import ApplicationError

from sisock import wamp
from sisock.servers.weather_example import FIELDS, generate
from tests.support import Process, most_per_slot

END = 1_700_000_000.0
GET_FIELDS, GET_DATA = wamp.get_fields_uri("apex_archive"), wamp.get_data_uri("apex_archive")


@pytest.fixture(scope="module")
def weather_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("weather")
    generate(directory, end=END, days=2)
    return directory


@pytest.fixture
def weather(procs, weather_dir):
    procs.start("hub").wait_for("hub ready")
    server = procs.start("weather", env={"DATA_DIRECTORY": str(weather_dir)})
    server.wait_for("added data node apex_archive")
    return server


def load_file(directory: Path, field: str):
    table = np.loadtxt(directory / f"{field}.txt", comments="#")
    return table[:, 0], table[:, 1]


def test_get_fields_lists_fields_with_samples_in_range(weather, client):
    fields, timelines = client.call(GET_FIELDS, END - 86400, END)
    assert set(fields) == set(FIELDS)
    assert fields["apex_temperature"] == {"description": "APEX outside air temperature", "timeline": "apex_hourly",
                                          "type": "number", "units": "C"}
    assert sorted(timelines["apex_minute"]["field"]) == ["apex_radiometer", "apex_windspeed"]
    assert timelines["apex_hourly"]["interval"] == 3600.0
    assert client.call(GET_FIELDS, END + 10, END + 3600) == [{}, {}]


def test_get_data_equals_the_files(weather, client, weather_dir):
    start, end = END - 3 * 3600, END - 3600
    answer = client.call(GET_DATA, ["apex_temperature", "apex_windspeed"], start, end)
    for field, timeline in (("apex_temperature", "apex_hourly"), ("apex_windspeed", "apex_minute")):
        t, v = load_file(weather_dir, field)
        inside = (t >= start) & (t < end)
        assert answer["timeline"][timeline]["t"] == t[inside].tolist()
        assert answer["data"][field] == v[inside].tolist()
        assert answer["timeline"][timeline]["fields"] == [field]


def test_single_field_name_and_unknown_field(weather, client):
    answer = client.call(GET_DATA, "apex_pressure", END - 7200, END)
    assert len(answer["data"]["apex_pressure"]) == 2
    assert client.call(GET_DATA, ["no_such_field"], END - 7200, END) == {"data": {}, "timeline": {}}


def test_min_stride_keeps_extremes(weather, client, weather_dir):
    start, end = END - 86400, END
    t, v = load_file(weather_dir, "apex_windspeed")
    inside = (t >= start) & (t < end)
    answer = client.call(GET_DATA, ["apex_windspeed"], start, end, 600)
    times = np.array(answer["timeline"]["apex_minute"]["t"])
    values = answer["data"]["apex_windspeed"]
    assert len(times) < inside.sum() / 2
    assert most_per_slot(times, 600) <= 4
    assert max(values) == v[inside].max() and min(values) == v[inside].min()


def test_max_points_is_honoured(procs, client, weather_dir):
    procs.start("hub").wait_for("hub ready")
    procs.start("weather", env={"DATA_DIRECTORY": str(weather_dir), "MAX_POINTS": "100"}).wait_for(
        "added data node apex_archive")
    answer = client.call(GET_DATA, ["apex_radiometer"], END - 86400, END)
    _, v = load_file(weather_dir, "apex_radiometer")
    assert 25 <= len(answer["data"]["apex_radiometer"]) <= 100
    assert len(answer["timeline"]["apex_minute"]["t"]) == len(answer["data"]["apex_radiometer"])


def test_relative_times_count_back_from_now(procs, client, tmp_path):
    generate(tmp_path, end=time.time(), days=1)
    procs.start("hub").wait_for("hub ready")
    procs.start("weather", env={"DATA_DIRECTORY": str(tmp_path)}).wait_for("added data node apex_archive")
    answer = client.call(GET_DATA, ["apex_temperature"], -3 * 3600, 0)
    assert len(answer["data"]["apex_temperature"]) in (2, 3)
    assert answer["timeline"]["apex_hourly"]["t"][0] >= time.time() - 3 * 3600 - 60


def test_bad_arguments_are_errors_and_the_server_goes_on(weather, client):
    with pytest.raises(ApplicationError) as caught:
        client.call(GET_DATA, ["apex_temperature"], "yesterday", END)
    assert caught.value.error == f"{wamp.BASE_URI}.error.bad_request"
    assert "bad time" in caught.value.args[0]
    with pytest.raises(ApplicationError):
        client.call(GET_DATA, 42, END - 3600, END)
    for stride in (float("nan"), -5, "often"):
        with pytest.raises(ApplicationError) as caught:
            client.call(GET_DATA, ["apex_temperature"], END - 7200, END, stride)
        assert "min_stride" in caught.value.args[0]
    assert client.call(GET_DATA, ["apex_temperature"], END - 7200, END)["data"]["apex_temperature"]


def test_files_that_change_or_break_are_handled(procs, client, tmp_path):
    generate(tmp_path, end=END, days=1)
    procs.start("hub").wait_for("hub ready")
    server = procs.start("weather", env={"DATA_DIRECTORY": str(tmp_path)})
    server.wait_for("added data node apex_archive")
    with open(tmp_path / "apex_temperature.txt", "a") as handle:
        handle.write(f"{END + 10:.0f} 99.5\n")
    with open(tmp_path / "apex_humidity.txt", "a") as handle:
        handle.write(f"{END + 10:.0f} inf\n{END + 20:.0f} nan\n")
    (tmp_path / "apex_pressure.txt").write_text("not a weather file\n")
    answer = client.call(GET_DATA, ["apex_temperature", "apex_pressure", "apex_humidity"], END, END + 3600)
    assert answer["data"] == {"apex_temperature": [99.5], "apex_humidity": [None, None]}
    server.wait_for("skipping")
    assert server.alive()


def start_failing_node(procs, env=None):
    node = Process([sys.executable, str(Path(__file__).parent / "nodes" / "failing_node.py")],
                   dict(procs.env, **(env or {})), "failing node")
    procs.running.append(node)
    node.wait_for("added data node failing_node")
    return node


def test_exception_in_a_data_node_is_a_readable_error(procs, client):
    procs.start("hub").wait_for("hub ready")
    node = start_failing_node(procs)
    with pytest.raises(ApplicationError) as caught:
        client.call(wamp.get_data_uri("failing_node"), ["broken"], END - 10, END)
    assert caught.value.error == f"{wamp.BASE_URI}.error.data_node_failed"
    message = "failing_node: get_data(['broken'], 1699999990.0, 1700000000.0) failed: the archive disk is unreadable"
    assert caught.value.args[0] == message
    node.wait_for(f"error: {message} Traceback")
    assert client.call(wamp.get_data_uri("failing_node"), ["ok"], END - 10, END)["data"] == {"ok": [1.0]}
    assert node.alive()


def test_work_abandoned_by_its_caller_is_dropped(procs, client):
    procs.start("hub").wait_for("hub ready")
    node = start_failing_node(procs, {"HTTP_TIMEOUT": "1"})
    results = []

    def ask():
        try:
            results.append(client.call(wamp.get_data_uri("failing_node"), ["slow"], END - 10, END, timeout=30))
        except ApplicationError as exc:
            results.append(exc.error)

    callers = [threading.Thread(target=ask) for _ in range(8)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(30)
    # four workers answer in 2 s; the four that waited longer than HTTP_TIMEOUT are refused
    assert results.count(f"{wamp.BASE_URI}.error.busy") == 4
    assert sum(isinstance(r, dict) for r in results) == 4
    assert node.alive()
