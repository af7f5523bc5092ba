"""``sisock apex-weather`` over a generated archive in the APEX layout."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sisock import wamp
from sisock.config import Config, ConfigError
from sisock.servers.apex_weather import ApexWeatherServer
from tests.support import most_per_slot

DAY = 86400
T0 = 1_600_000_000  # the archive's first second
DAYS = 3
STEP = 60
GET_FIELDS, GET_DATA = wamp.get_fields_uri("apex_weather"), wamp.get_data_uri("apex_weather")


def values(field: str, t: np.ndarray) -> np.ndarray:
    base = {"temperature": -5.0, "humidity": 20.0, "windspeed": 10.0}[field]
    return np.round(base + 3 * np.sin(2 * np.pi * (t - T0) / DAY), 3)


def write_archive(top: Path) -> dict:
    """Day files of three fields, a stray file, and a file whose name hides its content; returns the truth."""
    targets = top / "targets"
    targets.mkdir(parents=True)
    truth = {}
    for field in ("temperature", "humidity", "windspeed"):
        t_all, v_all = [], []
        for d in range(DAYS):
            start = T0 + d * DAY
            t = np.arange(start, start + DAY, STEP, dtype=float)
            v = values(field, t)
            if field == "windspeed" and d == 1:
                v[100] = 99.0  # a gust that decimation must keep
            lines = "".join(f"{a:.0f} {b}\n" for a, b in zip(t, v))
            (targets / f"APEX_{field}_{start}_{start + DAY - STEP}.dat").write_text(lines)
            t_all.append(t)
            v_all.append(v)
        truth[field] = (np.concatenate(t_all), np.concatenate(v_all))
    (targets / "README.txt").write_text("not an archive file\n")
    # named for a later week, but holding samples inside the archive's span: never read for those
    late = T0 + 30 * DAY
    (targets / f"APEX_temperature_{late}_{late + DAY}.dat").write_text(f"{T0 + 30} 1000.0\n{late} 1.0\n")
    return truth


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    top = tmp_path_factory.mktemp("apex")
    return top, write_archive(top)


@pytest.fixture
def server(archive):
    return ApexWeatherServer(Config(data_directory=archive[0]))


def expected(truth, field, start, end):
    t, v = truth[field]
    keep = (t >= start) & (t < end)
    return t[keep].tolist(), v[keep].tolist()


def test_window_across_two_files_is_exact(server, archive):
    _, truth = archive
    start, end = T0 + DAY // 2, T0 + DAY + DAY // 2
    answer = server.get_data(["temperature", "humidity", "no_such_field"], start, end, None)
    for field in ("temperature", "humidity"):
        assert (answer["timeline"][field]["t"].tolist(), answer["data"][field].tolist()) == \
            expected(truth, field, start, end)
    assert set(answer["data"]) == {"temperature", "humidity"}


def test_files_are_chosen_by_the_ctimes_in_their_names(server):
    answer = server.get_data(["temperature"], T0, T0 + 60, None)
    assert 1000.0 not in answer["data"]["temperature"].tolist()
    late = T0 + 30 * DAY
    assert server.get_data(["temperature"], late, late + 10, None)["data"]["temperature"].tolist() == [1.0]


def test_fields_and_empty_ranges(server):
    fields, timelines = server.get_fields(T0, T0 + DAY)
    assert set(fields) == {"temperature", "humidity", "windspeed"}
    assert fields["temperature"] == {"description": "APEX weather station temperature", "timeline": "temperature",
                                     "type": "number", "units": "C"}
    assert timelines["humidity"]["field"] == ["humidity"]
    assert server.get_fields(T0 - 10 * DAY, T0 - DAY) == ({}, {})
    assert server.get_data(["temperature"], T0 - 10 * DAY, T0 - DAY, None) == {"data": {}, "timeline": {}}
    assert server.get_fields(T0 + 40 * DAY, T0 + 41 * DAY) == ({}, {})


def test_a_growing_file_is_read_again(tmp_path):
    write_archive(tmp_path)
    server = ApexWeatherServer(Config(data_directory=tmp_path))
    path = tmp_path / "targets" / f"APEX_humidity_{T0}_{T0 + DAY - STEP}.dat"
    path.write_text(f"{T0} 1.5\n{T0 + 60} 2.5\n{T0 + 120} 3")  # the last line still being written
    assert server.get_data(["humidity"], T0, T0 + DAY, None)["data"]["humidity"].tolist() == [1.5, 2.5, 3.0]
    path.write_text(f"{T0} 1.5\n{T0 + 60} 2.5\n{T0 + 120} 3.5\n{T0 + 180}")
    assert server.get_data(["humidity"], T0, T0 + DAY, None)["data"]["humidity"].tolist() == [1.5, 2.5, 3.5]


def test_data_directory_is_required():
    with pytest.raises(ConfigError, match="DATA_DIRECTORY"):
        ApexWeatherServer(Config())


def test_max_points_and_min_stride_through_the_router(procs, client, archive):
    top, truth = archive
    procs.start("hub").wait_for("hub ready")
    procs.start("apex-weather", env={"DATA_DIRECTORY": str(top), "MAX_POINTS": "200"}).wait_for(
        "added data node apex_weather")
    start, end = T0, T0 + DAYS * DAY
    answer = client.call(GET_DATA, "windspeed", start, end)
    assert 0 < len(answer["data"]["windspeed"]) <= 200
    assert max(answer["data"]["windspeed"]) == 99.0 and min(answer["data"]["windspeed"]) == truth["windspeed"][1].min()

    strided = client.call(GET_DATA, ["windspeed"], start, end, 3600)
    assert most_per_slot(strided["timeline"]["windspeed"]["t"], 3600) <= 4
    assert max(strided["data"]["windspeed"]) == 99.0

    fields, _ = client.call(GET_FIELDS, start, end)
    assert fields["windspeed"]["units"] == "km/h"
