"""``sisock radiometer`` over a generated UCSC PWV archive: the 2018 naming switch and a year boundary."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from sisock import wamp
from sisock.config import Config
from sisock.servers.radiometer import RadiometerServer

GET_DATA = wamp.get_data_uri("ucsc_radiometer")
PER_DAY = 240  # one sample every 6 minutes
#: (year, day of year) of the generated files; 2018 days up to 201 use the old name.
DAYS = [(2018, 199), (2018, 200), (2018, 201), (2018, 202), (2018, 203), (2018, 364), (2018, 365), (2019, 1),
        (2019, 2)]


def utc(year: int, day: float) -> float:
    """UNIX time of a fractional day of year (day 1.0 = 1 January 00:00 UTC)."""
    return (datetime(year, 1, 1, tzinfo=timezone.utc) + timedelta(days=day - 1)).timestamp()


def file_name(year: int, day: int) -> str:
    return f"PWV_UCSC_{day}-{year}.txt" if year == 2018 and day <= 201 else f"PWV_UCSC_{year}-{day}.txt"


def write_archive(top: Path):
    """The day files, every 7th value NaN; returns the truth as (unix times, pwv) without the NaNs."""
    folder = top / "PWV"
    folder.mkdir(parents=True)
    all_t, all_v = [], []
    for year, day in DAYS:
        frac = day + np.arange(PER_DAY) / PER_DAY
        pwv = np.round(1.0 + 0.5 * np.sin(frac), 4)
        lines = ["Day PWV(mm)"]
        for k, (d, p) in enumerate(zip(frac.tolist(), pwv.tolist())):
            lines.append(f"{d!r} NaN" if k % 7 == 3 else f"{d!r} {p!r}")
            if k % 7 != 3:
                all_t.append(utc(year, d))
                all_v.append(p)
        (folder / file_name(year, day)).write_text("\n".join(lines) + "\n")
    (folder / "notes.txt").write_text("not a PWV file\n")
    return np.array(all_t), np.array(all_v)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    top = tmp_path_factory.mktemp("radiometer")
    return top, write_archive(top)


@pytest.fixture
def server(archive):
    return RadiometerServer(Config(data_directory=archive[0]))


def check_window(server, truth, start, end):
    t, v = truth
    keep = (t >= start) & (t < end)
    answer = server.get_data(["pwv"], start, end, None)
    assert np.allclose(answer["timeline"]["pwv"]["t"], t[keep], rtol=0, atol=1e-3)
    assert answer["data"]["pwv"].tolist() == v[keep].tolist()
    return answer


def test_window_across_the_2018_naming_switch(server, archive):
    _, truth = archive
    answer = check_window(server, truth, utc(2018, 201.5), utc(2018, 202.5))
    pwv = answer["data"]["pwv"]
    assert not np.isnan(pwv).any() and len(pwv) == PER_DAY - len(range(3, PER_DAY, 7))  # NaN lines left out


def test_window_across_a_year_boundary(server, archive):
    _, truth = archive
    answer = check_window(server, truth, utc(2018, 365.25), utc(2019, 1.75))
    t = answer["timeline"]["pwv"]["t"]
    assert t[0] < datetime(2019, 1, 1, tzinfo=timezone.utc).timestamp() < t[-1]


def test_times_are_utc(server):
    noon = datetime(2018, 7, 21, 12, tzinfo=timezone.utc).timestamp()  # 2018-07-21 is day 202
    t = server.get_data(["pwv"], noon, noon + 1, None)["timeline"]["pwv"]["t"]
    assert t.tolist() == [noon]


def test_fields_and_empty_ranges(server):
    fields, timelines = server.get_fields(utc(2018, 199), utc(2018, 200))
    assert fields == {"pwv": {"description": "PWV from the UCSC radiometer", "timeline": "pwv", "type": "number",
                              "units": "mm"}}
    assert timelines == {"pwv": {"interval": None, "field": ["pwv"]}}
    gap_start, gap_end = utc(2018, 250), utc(2018, 260)
    assert server.get_fields(gap_start, gap_end) == ({}, {})
    empty = server.get_data(["pwv"], gap_start, gap_end, None)
    assert len(empty["data"]["pwv"]) == 0 and len(empty["timeline"]["pwv"]["t"]) == 0
    assert server.get_data(["temperature"], utc(2018, 199), utc(2018, 200), None) == {"data": {}, "timeline": {}}


def test_max_points_through_the_router(procs, client, archive):
    top, (t, v) = archive
    procs.start("hub").wait_for("hub ready")
    procs.start("radiometer", env={"DATA_DIRECTORY": str(top), "MAX_POINTS": "50"}).wait_for(
        "added data node ucsc_radiometer")
    start, end = utc(2018, 199), utc(2018, 204)
    answer = client.call(GET_DATA, "pwv", start, end)
    keep = (t >= start) & (t < end)
    assert 0 < len(answer["data"]["pwv"]) <= 50
    assert max(answer["data"]["pwv"]) == v[keep].max() and min(answer["data"]["pwv"]) == v[keep].min()
