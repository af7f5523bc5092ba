"""Finalized results kept by sisock-http (sisock/http/results.py): answers with them equal answers without.

In process: random panels over an archive that grows, gets new files, has a file rewritten in
place, removed and copied in late, each answered by sisock.http.results over a node emulated as
the real one answers (the reader's worker answer, the base's finish, the pieces' split and join),
against the same node asked for the whole window. Over a real router: joined names across the
live seam, from two sisock-http, one keeping results and one not.
"""
from __future__ import annotations

import math
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from sisock import pieces
from sisock.datanode import finish
from sisock.decimate import choose_step
from sisock.g3 import workers
from sisock.g3.reader import Reader
from sisock.g3.scanner import Scanner
from sisock.g3.writer import Archive, Block, Provider
from sisock.http.answers import Entry
from sisock.http.fanout import Call
from sisock.http.results import KEEP_WINDOWS, WRITTEN, Results
from tests.g3_support import END, make_index
from tests.http_support import JsonHttp, query
from tests.joined_support import Aggregator, indexed_until
from tests.support import free_port, wait_until

PROVIDERS = [
    Provider("observatory.LSK1.feeds.temperatures", (Block("fast", ("ch0", "ch1"), 2.0),
                                                      Block("slow", ("heater",), 0.2),
                                                      Block("mode", ("state",), 0.1, "string"))),
    Provider("observatory.LSK2.feeds.pressures", (Block("gauges", ("p0",), 1.0),
                                                   Block("flags", ("open",), 0.5, "bool"))),
]
FIELDS = [f"{p.description}.{f}" for p in PROVIDERS for b in p.blocks for f in b.fields]
START = END - 6 * 3600


def node(reader: Reader):
    """``issue(stride)`` for Results.fetch: each call answered as the g3-reader answers it over the router."""
    def issue(stride):
        def calls_answered(calls, first):
            out = []
            for c in calls:
                raw = workers.answer(reader, c.fields, c.start, c.end, stride, 0, c.cut)
                out.append(pieces.join(pieces.split(finish(raw, stride, 0, (c.start, c.end)))))
            return out
        return calls_answered
    return issue


def canonical(answers: dict) -> dict:
    """Answers as plain values (NaN as None), to compare."""
    out = {}
    for node_name, answer in answers.items():
        for name, timeline in answer["timeline"].items():
            values = {f: [None if isinstance(x, float) and math.isnan(x) else x for x in np.asarray(
                answer["data"][f]).tolist()] for f in timeline["fields"]}
            out[(node_name, name)] = (np.asarray(timeline["t"]).tolist(), timeline["finalized_until"],
                                      timeline.get("revision"), values)
    return out


def check_written(answers: dict) -> int:
    """The JSON of each stitched field, written part by part from kept slots, is the bytes of its points
    written whole; how many were."""
    count = 0
    for answer in answers.values():
        for name, timeline in answer["timeline"].items():
            parts = timeline[WRITTEN]() if WRITTEN in timeline else None
            if parts is None:
                continue
            t, v = np.asarray(timeline["t"], dtype=float), np.asarray(answer["data"][name], dtype=float)
            assert Entry(name, t, v, False, parts).points(0, len(t)) == Entry(name, t, v, False).points(0, len(t))
            count += 1
    return count


class Site:
    """An archive of 10-minute files that grows, changes and loses files, scanned after each change."""

    def __init__(self, top: Path, index) -> None:
        self.top, self.index = top, index
        self.archive = Archive(PROVIDERS, START, END, file_seconds=600, frame_seconds=60)
        self.paths = self.archive.write(top)
        self.end = END
        self.scanner = Scanner(index, top)
        self.scanner.scan_once()
        self.gone: list = []

    def change(self, rng: random.Random) -> str:
        what = rng.choice(["grow", "new file", "rewrite", "remove", "late copy"])
        if what == "grow":
            self.archive.write_file(self.paths[-1], self.end, self.end + 120, append=True)
            self.end += 120
        elif what == "new file":
            path = self.archive.file_path(self.top, self.end)
            self.archive.write_file(path, self.end, self.end + 600)
            self.paths.append(path)
            self.end += 600
        elif what == "rewrite":  # other values in place: a spike in every number block
            path = rng.choice([p for p in self.paths[:-1] if p.stem.isdigit()])
            t0 = float(path.stem)
            spike = ((t0 + rng.randrange(0, 600, 10), 1e6),)
            spiky = [Provider(p.description, tuple(Block(b.name, b.fields, b.rate, b.kind,
                                                         spike if b.kind == "number" else ()) for b in p.blocks))
                     for p in PROVIDERS]
            Archive(spiky, t0, t0 + 600, file_seconds=600, frame_seconds=60).write_file(path, t0, t0 + 600)
        elif what == "remove" and len(self.paths) > 3:
            path = self.paths.pop(rng.randrange(1, len(self.paths) - 1))
            kept = path.with_suffix(".kept")
            path.rename(kept)
            self.gone.append(kept)
        elif what == "late copy" and self.gone:
            kept = self.gone.pop()
            late = kept.with_name(kept.stem + "-late.g3")
            kept.rename(late)
            self.paths.insert(1, late)
        self.scanner.scan_once()
        return what


#: Windows asked every round, across the changes: ending in the archive or beyond it (as it grows into them).
FIXED = [(END - 1800, END + 200.5, 200), (END - 7200 + 3.25, END + 650.25, 60), (START + 60.5, END - 900.75, 1000)]


def windows(rng: random.Random, site: Site):
    """A dashboard's windows: ending at the archive's end or after it (live), or anywhere in it; repeated too;
    and the fixed ones."""
    yield from FIXED
    span = rng.choice([600, 1800, 3600, 3 * 3600, 6 * 3600])
    end = rng.choice([site.end + rng.uniform(-30, 90), rng.uniform(START + span, site.end), site.end - 0.5])
    points = rng.choice([20, 60, 200, 1000])
    for _ in range(rng.randint(1, 3)):
        yield end - span, end, points


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kept_answers_equal_fresh_ones_over_random_panels_and_changes(tmp_path, seed):
    index = make_index({"SQLITE_PATH": str(tmp_path / "index.sqlite")})
    site = Site(tmp_path / "archive", index)
    reader = Reader(index, 64)
    issue = node(reader)
    kept, fresh = Results(64_000_000), Results(0)
    rng = random.Random(seed)
    hits = written = 0
    for round_ in range(14):
        for _ in range(4):
            names = rng.sample(FIELDS, rng.randint(1, 4))
            for start, end, points in windows(rng, site):
                stride = choose_step(start, end, None, points)
                got, note = kept.fetch({"g3_reader": names}, start, end, stride, issue(stride))
                want, _ = fresh.fetch({"g3_reader": names}, start, end, stride, issue(stride))
                assert canonical(got) == canonical(want), (seed, round_, names, start, end, points)
                written += check_written(got)
                hits += note.hits
        site.change(rng)
    assert hits > 20, "the random panels should have reused kept slots"
    assert written > 20, "stitched answers should have come with their JSON"


def test_memory_stays_within_the_bound_and_a_field_keeps_a_few_windows(tmp_path):
    index = make_index({"SQLITE_PATH": str(tmp_path / "index.sqlite")})
    site = Site(tmp_path / "archive", index)
    issue = node(Reader(index, 64))
    names = [f for f in FIELDS if not f.endswith(("state", "open"))]
    capacity = 40_000
    kept = Results(capacity)
    for k in range(60):  # a window sliding back in time: every answer has slots to keep
        end = site.end - 60 * k
        stride = choose_step(end - 1800, end, None, 200)
        kept.fetch({"g3_reader": names}, end - 1800, end, stride, issue(stride))
        assert kept.kept.size <= capacity
    assert kept.kept.size > capacity / 2
    wide = Results(64_000_000)
    for k in range(40):  # a panel moving on: older slots go
        end = START + 1800 + 300 * k
        stride = choose_step(end - 1800, end, None, 200)
        wide.fetch({"g3_reader": names[:1]}, end - 1800, end, stride, issue(stride))
    (entry,) = [v for _, v in wide.kept._entries.values()]
    assert entry.slots.w1 - entry.slots.w0 <= KEEP_WINDOWS * (1800 + stride)


def test_a_call_for_nothing_but_the_revision_answers_it(tmp_path):
    """A panel asked again over the same finalized window asks for no sample at all, only the revision."""
    index = make_index({"SQLITE_PATH": str(tmp_path / "index.sqlite")})
    Site(tmp_path / "archive", index)
    issue = node(Reader(index, 64))
    asked = []

    def counting(calls, first):
        asked.extend(calls)
        return issue(60.0)(calls, first)
    results = Results(1_000_000)
    name = FIELDS[0]
    first, _ = results.fetch({"g3_reader": [name]}, END - 3600 - 7.5, END - 600.5, 60.0, counting)
    again, note = results.fetch({"g3_reader": [name]}, END - 3600 - 7.5, END - 600.5, 60.0, counting)
    assert canonical(first) == canonical(again) and note.hits == 1
    assert asked[-1] == Call("g3_reader", [name], END - 3600 - 7.5, END - 600.5, (END - 3600 - 7.5, END - 600.5))


# -- over a real router: joined names, the live seam, two sisock-http -----------------------------------
LIVE = Provider("observatory.LSKEEP.feeds.temperatures", (Block("temps", ("Channel_01_T", "Channel_02_T"), 2.0),))


@pytest.mark.parametrize("g3_env", ["sqlite"], indirect=True)
def test_joined_names_across_the_live_seam_are_the_same_with_and_without_kept_results(procs, ocs, g3_env):
    now = math.floor(time.time())
    h0 = now - 900.0
    top = Path(g3_env["DATA_DIRECTORY"])
    top.mkdir(parents=True, exist_ok=True)
    agg = Aggregator(top, ocs, [LIVE], frame=10.0)
    agg.new_file(h0)
    agg.write(h0, h0 + 300)
    procs.start("hub").wait_for("hub ready")
    procs.start("g3-file-scanner", env=dict(g3_env, SCAN_INTERVAL="3600")).wait_for("pass done")
    procs.start("g3-reader", env=dict(g3_env, G3_READER_PROCESSES="2")).wait_for("added data node g3_reader")
    procs.start("data-feed", env={"TARGET": "LSKEEP", "FEED": "temperatures", "NAME": "keep"}).wait_for(
        "added data node keep")
    servers = []
    for cache in ("64", "0"):
        port = free_port()
        procs.start("http", env={"PORT": str(port), "HTTP_CACHE_MB": cache}).wait_for("serving Grafana datasources")
        servers.append(JsonHttp(port))
    names = [f"{LIVE.description}.Channel_01_T", f"g3_reader::{LIVE.description}.Channel_02_T"]
    try:
        wait_until(lambda: all("g3_reader" in (s.request("GET", "/")[1] or {}).get("data_nodes", [])
                               for s in servers), 30, "both sisock-http to list the reader")
        reused = 0
        for k in range(8):  # the aggregator writes on, the feed publishes ahead of the archive
            agg.publish(LIVE, h0 + 330 + 60 * k, h0 + 400 + 60 * k)  # before the frames: the feed has them first
            agg.write(h0 + 300 + 60 * k, h0 + 360 + 60 * k)
            wait_until(lambda k=k: indexed_until(g3_env, LIVE.description) >= h0 + 359 + 60 * k, 30, "the new frames")
            for span, points in ((600, 100), (900, 60), (800, 1000)):
                end = h0 + 420 + 60 * k + 0.25
                body = query(end - span, end, *names, max_points=points)
                body["range"]["to"] = body["range"]["to"].replace(".000Z", ".250Z")
                (status, a, headers), (_, b, _) = (s.request("POST", "/query", body) for s in servers)
                assert status == 200 and a == b, (k, span, points)
                reused += 'desc="0/' not in headers["Server-Timing"]
        assert reused >= 10, "kept slots should have answered most of these panels"
        body = query(h0 + 60, h0 + 600.5, *names, max_points=200)  # asked again: the reader reads nothing
        for _ in range(2):
            (status, a, headers), (_, b, _) = (s.request("POST", "/query", body) for s in servers)
            assert status == 200 and a == b
        assert 'desc="2/2 fields from kept slots' in headers["Server-Timing"]
    finally:
        agg.close()
        shutil.rmtree(top, ignore_errors=True)


def test_any_data_node_answers_a_cut_as_its_whole_window_less_those_slots():
    """The base's get_data_cut (two get_data calls, concatenated): on slot boundaries, the whole
    window's answer without its slots [a, b), numbers and text alike."""
    from sisock.config import load
    from sisock.datanode import DataNodeServer, data_result

    t = np.sort(np.random.default_rng(5).uniform(0, 10_000, 5000)) + 1.7e9
    v = np.random.default_rng(6).normal(0, 1, len(t))
    text = np.array([f"s{int(x) % 7}" for x in t], dtype=object)

    class Node(DataNodeServer):
        name = "mem"

        def get_data(self, fields, start, end, min_stride):
            inside = (t >= start) & (t < end)
            return data_result({"tl": (t[inside], {"x": v[inside], "s": text[inside]})})

    node = Node(load({}))
    start, end, step = 1.7e9 + 13.25, 1.7e9 + 9_871.5, 60.0
    whole = finish(node.get_data(["x", "s"], start, end, step), step, 0, (start, end))
    a, b = 60.0 * math.ceil((1.7e9 + 3000) / 60), 60.0 * math.ceil((1.7e9 + 7020) / 60)  # on the slot grid
    cut = finish(node.get_data_cut(["x", "s"], start, end, step, (a, b)), step, 0, (start, end))
    keep = [i for i, x in enumerate(whole["timeline"]["tl"]["t"]) if not a <= x < b]
    assert cut["timeline"]["tl"]["t"] == [whole["timeline"]["tl"]["t"][i] for i in keep]
    for f in ("x", "s"):
        assert cut["data"][f] == [whole["data"][f][i] for i in keep]
