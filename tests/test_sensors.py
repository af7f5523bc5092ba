"""``sisock sensors`` with a stand-in ``sensors`` program first on PATH (a recorded ``sensors -u``)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from sisock import wamp
from sisock.servers.sensors import parse
from tests.support import wait_until

RECORDING = Path(__file__).parent / "data" / "sensors-u.txt"
GET_FIELDS, GET_DATA = wamp.get_fields_uri("sensors"), wamp.get_data_uri("sensors")
FIELD = "coretemp-isa-0000_temp1"


@pytest.fixture
def stand_in(tmp_path):
    """A ``sensors`` that prints the recording, or fails like lm-sensors while ``fail`` exists."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    flag = tmp_path / "fail"
    script = bin_dir / "sensors"
    script.write_text(f"#!/bin/sh\n"
                      f"if [ -e '{flag}' ]; then echo 'No sensors found!' >&2; exit 1; fi\n"
                      f"exec cat '{RECORDING}'\n")
    script.chmod(0o755)
    return bin_dir, flag


def start(procs, path: str, **env):
    procs.start("hub").wait_for("hub ready")
    server = procs.start("sensors", env=dict({"PATH": path, "SENSORS_INTERVAL": "0.2"}, **env))
    server.wait_for("added data node sensors")
    return server


def sample_times(client):
    return client.call(GET_DATA, FIELD, -600, 0)["timeline"].get("sensors", {}).get("t", [])


def test_recorded_output_parses_into_fields_with_units():
    readings = {r.field: r for r in parse(RECORDING.read_text())}
    assert len(readings) == 14  # every *_input line, none of the limits or alarms
    assert readings[FIELD].value == 45.0 and readings[FIELD].units == "C"
    assert readings[FIELD].description == "Package id 0 (coretemp-isa-0000)"
    assert readings["nct6775-isa-0290_fan2"].units == "RPM"
    assert readings["nct6775-isa-0290_in0"].value == 0.88 and readings["nct6775-isa-0290_in0"].units == "V"
    assert readings["amdgpu-pci-0300_power1"].units == "W"
    assert not any("intrusion" in name for name in readings)


def test_readings_are_served_and_kept_for_sensors_keep(procs, client, stand_in):
    bin_dir, _ = stand_in
    start(procs, f"{bin_dir}:/usr/bin:/bin", SENSORS_KEEP="2")
    time.sleep(3)
    fields, timelines = client.call(GET_FIELDS, -600, 0)
    assert len(fields) == 14
    assert fields[FIELD] == {"description": "Package id 0 (coretemp-isa-0000)", "timeline": "sensors",
                             "type": "number", "units": "C"}
    answer = client.call(GET_DATA, [FIELD, "nct6775-isa-0290_fan2"], -600, 0)
    t = answer["timeline"]["sensors"]["t"]
    assert set(answer["data"][FIELD]) == {45.0} and set(answer["data"]["nct6775-isa-0290_fan2"]) == {1102.0}
    assert 5 <= len(t) <= 12 and t[-1] - t[0] <= 2.0  # 0.2 s apart, nothing older than SENSORS_KEEP
    assert timelines["sensors"]["interval"] == pytest.approx(0.2, abs=0.1)


def test_failing_program_is_logged_once_and_old_samples_stay(procs, client, stand_in):
    bin_dir, flag = stand_in
    server = start(procs, f"{bin_dir}:/usr/bin:/bin")
    wait_until(lambda: len(sample_times(client)) >= 3, 10, "a few readings")
    flag.touch()
    server.wait_for("'sensors -u' failed with exit code 1: No sensors found!")
    before = sample_times(client)
    time.sleep(1)
    assert sample_times(client) == before and len(before) >= 3
    assert server.output.count("failed with exit code 1") == 1
    flag.unlink()
    wait_until(lambda: len(sample_times(client)) > len(before), 10, "readings to resume")
    assert server.alive()


def test_missing_program_is_a_clear_line_and_the_server_serves(procs, client, tmp_path):
    server = start(procs, str(tmp_path))
    server.wait_for("the 'sensors' program is not on PATH (install lm-sensors)")
    assert client.call(GET_FIELDS, -600, 0) == [{}, {}]
    assert client.call(GET_DATA, FIELD, -600, 0) == {"data": {}, "timeline": {}}
    assert server.alive()
