"""Benchmark of the .g3 archive: scanner and reader, beside the naive read and the raw G3Reader limit.

Makes a one-day archive (5 providers, 50 fields at 1-10 Hz times a factor
that brings it to ``--size-gb``; hourly files, 60 s frames, as the OCS
aggregator writes), then prints:
  (a) first scan (MB/s, frames/s) with summaries, without them and (``--before``) by an
      earlier checkout, and a rescan of the unchanged archive; the same rescan over
      ``--many-files`` small files;
  (b) ``get_data`` of 10 fields for 1 hour and 24 hours, cold (empty frame
      cache; the OS page cache stays warm) and warm, in samples/s, each the
      best of ``--repeat`` runs;
  (c) the same reads done the naive way (read and decode every frame of every
      file that overlaps, in order, with no index, as the original reader
      did), the raw ``G3Reader``
      reading all frames of those files with no processing (the limit; spt3g
      decodes a frame's objects lazily, so this reads bytes only), and
      G3Reader plus decoding every frame's blocks (the limit with decoding).
Two sets of 10 fields: all of one provider (a typical panel) and 2 from each
of the 5 providers (every frame of the window must be decoded).
  (d) full-resolution reads of one field's whole day and of six fields' (two blocks of one
      provider): sisock's reader cold and warm, the same reader with every frame left to
      spt3g (the read before frames were read from their bytes), so3g's ``HKArchiveScanner``
      (``--so3g PYTHON``: an interpreter with so3g installed, run in its own process, as so3g
      bundles its own spt3g) reading the same samples after its scan of the files, and its scan
      plus read, and raw spt3g's limits (G3Reader alone; with every block decoded).

Usage: ``.venv/bin/python bench/g3.py [--size-gb 1.0] [--dir DIR] [--many-files 10000] [--repeat 3] [--before DIR]
[--so3g PYTHON] [--only-full-resolution]``

``--before`` names a checkout of an earlier sisock, such as the scanner before summary
tiers (``git worktree add /tmp/before 92226e9``): its first scan of the same archive is
run in the same loop, so both rates come from one machine at one time.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

from spt3g import core

sys.path[0] = str(Path(__file__).resolve().parents[1])

# The scanner's worker processes run the main script's top level again, as __mp_main__
# (multiprocessing's spawn): importing the reader and the scanner (Twisted, autobahn) there would
# make every worker start a second later than in production, whose main script is `sisock`.
if __name__ != "__mp_main__":
    from sisock.config import load
    from sisock.g3 import format as fmt
    from sisock.g3 import rawframe
    from sisock.g3.index import open_index
    from sisock.g3.reader import FrameCache, Reader, _assemble, _collect, _Timeline, unpack
    from sisock.g3.scanner import Scanner
    from sisock.g3.writer import Archive, Block, Provider

DAY, HOUR = 86400.0, 3600.0
END = 1_700_006_400.0  # a UTC midnight
#: Blocks of each provider: (base rate in Hz, number of fields); 10 fields, 69 samples/s per provider.
LAYOUT = [(1.0, 2), (2.0, 2), (5.0, 3), (10.0, 3)]


def providers(factor: float) -> List[Provider]:
    return [Provider(f"observatory.agent{p}.feeds.hk",
                     tuple(Block(f"b{i}", tuple(f"f{p}_{i}_{j}" for j in range(n)), rate * factor)
                           for i, (rate, n) in enumerate(LAYOUT)))
            for p in range(5)]


def scale_for(size_gb: float) -> float:
    """Rate factor that makes a day of the layout about ``size_gb`` (8 bytes per value and per time)."""
    per_day = 5 * DAY * 8 * sum(rate * (n + 1) for rate, n in LAYOUT)
    return max(size_gb * 1e9 / per_day, 0.01)


def scan(directory: Path, index_path: Path, summarise: bool = True):
    """``(index, stats, seconds)`` of a first scan into a new SQLite index. With ``summarise`` off the
    scanner's aggregation is switched off (what a scan cost before summaries), and the files are
    marked unsummarised, so a reader of that index reads frames: today's full-resolution path."""
    index = open_index(load({"SQLITE_PATH": str(index_path)}))
    index.ensure_schema()
    began = time.perf_counter()
    stats = Scanner(index, directory, summarise=summarise).scan_once()
    seconds = time.perf_counter() - began
    if not summarise:
        index.run(lambda cur: cur.execute("UPDATE files SET summarized = 0"))
    return index, stats, seconds


#: A first scan by the sisock of another checkout (``--before``), in its own interpreter; prints seconds.
_SCAN_BEFORE = """
import sys, time
from pathlib import Path
import sisock
assert Path(sisock.__file__).resolve().is_relative_to(Path.cwd().resolve()), sisock.__file__
from sisock.config import load
from sisock.g3.index import open_index
from sisock.g3.scanner import Scanner
index = open_index(load({"SQLITE_PATH": sys.argv[2]}))
index.ensure_schema()
began = time.perf_counter()
Scanner(index, Path(sys.argv[1])).scan_once()
print(time.perf_counter() - began)
"""


def scan_before(checkout: Path, directory: Path, index_path: Path) -> float:
    """Seconds of a first scan of ``directory`` by the scanner of ``checkout`` (another sisock tree)."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    done = subprocess.run([sys.executable, "-c", _SCAN_BEFORE, str(directory), str(index_path)], cwd=checkout,
                          env=env, capture_output=True, text=True, check=True, timeout=3600)
    return float(done.stdout.split()[-1])


def naive_read(paths: List[Path], names: Dict[str, Dict[str, List[str]]], t0: float, t1: float):
    """The naive way: decode every frame of every overlapping file, keep what was asked."""
    pieces: Dict[str, _Timeline] = {}
    for path in paths:
        provs: Dict[int, str] = {}
        for frame in core.G3File(str(path)):
            kind = fmt.kind(frame)
            if kind == fmt.STATUS:
                provs.update(fmt.providers(frame))
            elif kind == fmt.DATA:
                description = provs.get(int(frame["prov_id"]))
                decoded = list(fmt.blocks(frame))
                if description in names and decoded:
                    _collect(pieces, description, unpack(frame), names[description], t0, t1)
    return {tl: _assemble(piece) for tl, piece in pieces.items()}


def raw_read(paths: List[Path]) -> int:
    """The limit: read every frame of the files with no processing; return the frames read."""
    count = 0
    for path in paths:
        for _ in core.G3File(str(path)):
            count += 1
    return count


def decode_read(paths: List[Path]) -> int:
    """Also a limit: read every frame and deserialise its blocks (spt3g decodes lazily), nothing else."""
    count = 0
    for path in paths:
        for frame in core.G3File(str(path)):
            if "blocks" in frame:
                count += len(frame["blocks"])
    return count


def cold_read(reader: Reader, names: List[str], t0: float, t1: float):
    """``get_data`` with the frame cache emptied first (the OS page cache stays warm)."""
    reader.cache = FrameCache(reader.cache.capacity)
    return reader.data(names, t0, t1)


def samples(result) -> int:
    return sum(len(t) * len(columns) for t, columns in result.values())


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def best(fn, repeat: int):
    """``(seconds, value)`` of the fastest of ``repeat`` runs (other load on the machine only adds time)."""
    return min((timed(fn) for _ in range(repeat)), key=lambda r: r[0])


COLUMNS = ("seconds", "samples/s", "MB/s", "vs naive", "of raw MB/s")


def row(label: str, seconds: float, nsamples: int, nbytes: int, naive: float, raw_rate: float) -> None:
    """One line: time, samples/s (when it returns samples), MB/s of ``nbytes``, speed-up on naive, share of raw rate."""
    rate = nbytes / 1e6 / seconds if nbytes else 0.0
    cells = [f"{seconds:.3f}", f"{nsamples / seconds:,.0f}" if nsamples else "", f"{rate:.0f}" if nbytes else "",
             f"{naive / seconds:.1f}x", f"{rate / raw_rate:.0%}" if nbytes else ""]
    print(f"  {label:<42}" + "".join(f" | {c:>12}" for c in cells))


def bench_reads(index, archive: Archive, paths: List[Path], cache_mb: int, repeat: int) -> None:
    provs = list(archive.providers)
    sets = {
        "one provider": [f"{provs[0].description}.{f}" for b in provs[0].blocks for f in b.fields],
        "2 x 5 providers": [f"{p.description}.{b.fields[0]}" for p in provs for b in p.blocks[2:4]],
    }
    windows = {"1 h": (END - 13.5 * HOUR, END - 12.5 * HOUR), "24 h": (END - DAY, END)}
    print(f"\n(b)+(c) get_data of 10 fields, best of {repeat} runs (MB/s: bytes of the frames read per second;"
          " of raw MB/s: that rate over the raw G3Reader's)")
    print(f"  {'read':<42}" + "".join(f" | {c:>12}" for c in COLUMNS))
    for set_name, names in sets.items():
        wanted: Dict[str, Dict[str, List[str]]] = {}
        for name in names:
            description, key = name.rsplit(".", 1)
            wanted.setdefault(description, {})[key] = [name]
        for window_name, (t0, t1) in windows.items():
            overlapping = [p for p in paths if float(p.stem) < t1 and float(p.stem) + archive.file_seconds > t0]
            bench_window(f"{set_name}, {window_name}", index, names, wanted, overlapping, t0, t1, cache_mb, repeat)


def bench_window(label: str, index, names: List[str], wanted: Dict[str, Dict[str, List[str]]],
                 overlapping: List[Path], t0: float, t1: float, cache_mb: int, repeat: int) -> None:
    """The rows of one read: sisock cold and warm, the naive read, and the two limits."""
    file_bytes = sum(p.stat().st_size for p in overlapping)
    frames = index.frames_in(list(wanted), t0, t1)
    read_bytes = sum(f[4] for f in frames)
    reader = Reader(index, cache_mb)
    reader.resolve(names)  # a running server has its name table; cold means an empty frame cache
    cold, result = best(lambda: cold_read(reader, names, t0, t1), repeat)
    warm, _ = best(lambda: reader.data(names, t0, t1), repeat)
    naive, naive_result = best(lambda: naive_read(overlapping, wanted, t0, t1), repeat)
    raw, _ = best(lambda: raw_read(overlapping), repeat)
    decode, _ = best(lambda: decode_read(overlapping), repeat)
    n = samples(result)
    assert n == samples(naive_result), "the reader and the naive read disagree"
    raw_rate = file_bytes / 1e6 / raw
    print(f"{label}: {n:,} samples; sisock reads {len(frames)} frames ({read_bytes / 1e6:.0f} MB) "
          f"of {len(overlapping)} files ({file_bytes / 1e6:.0f} MB)")
    row("sisock get_data, cold (empty frame cache)", cold, n, read_bytes, naive, raw_rate)
    row("sisock get_data, warm (frames cached)", warm, n, 0, naive, raw_rate)
    row("naive: decode every frame of the files", naive, n, file_bytes, naive, raw_rate)
    row("limit: raw G3Reader (reads, no decoding)", raw, 0, file_bytes, naive, raw_rate)
    row("limit: G3Reader + decode every block", decode, 0, file_bytes, naive, raw_rate)


#: so3g's read of the same samples, in an interpreter that has so3g (argv: repeat, fields, start, end, files);
#: prints the seconds of the scan, of the fastest read, and the samples read, as JSON.
_SO3G = """
import json, sys, time
from so3g.hk import HKArchiveScanner
repeat, fields, t0, t1, files = int(sys.argv[1]), sys.argv[2].split(","), float(sys.argv[3]), float(sys.argv[4]), \\
    sys.argv[5:]
began = time.perf_counter()
scanner = HKArchiveScanner()
for f in files:
    scanner.process_file(f)
archive = scanner.finalize()
scan = time.perf_counter() - began
reads = []
for _ in range(repeat):
    began = time.perf_counter()
    got = archive.simple(fields, start=t0, end=t1)
    reads.append(time.perf_counter() - began)
print(json.dumps({"scan": scan, "read": min(reads), "samples": sum(len(t) for t, _ in got)}))
"""


def so3g_read(python: str, paths: List[Path], names: List[str], t0: float, t1: float, repeat: int) -> dict:
    """so3g's scan of ``paths`` and its fastest read of ``names`` over ``[t0, t1)``, in its own interpreter."""
    done = subprocess.run([python, "-c", _SO3G, str(repeat), ",".join(names), str(t0), str(t1),
                           *map(str, paths)], capture_output=True, text=True, check=True, timeout=3600,
                          env=dict(os.environ, PYTHONSAFEPATH="1"))
    return json.loads(done.stdout.split("\n")[-2])


def spt3g_only(reader: Reader, names: List[str], t0: float, t1: float):
    """The reader with every frame left to spt3g (how it read before frames were read from their bytes)."""
    real = rawframe.read_data_frame
    rawframe.read_data_frame = lambda *args: None
    try:
        return cold_read(reader, names, t0, t1)
    finally:
        rawframe.read_data_frame = real


def bench_full_resolution(index, archive: Archive, paths: List[Path], cache_mb: int, repeat: int,
                          so3g_python: Optional[str]) -> None:
    """(d): one field's and six fields' whole day, every sample."""
    provider = archive.providers[0]
    sets = {"1 field": [f"{provider.description}.{provider.blocks[3].fields[0]}"],
            "6 fields": [f"{provider.description}.{f}" for b in provider.blocks[2:4] for f in b.fields]}
    t0, t1 = archive.start, archive.end
    print(f"\n(d) full resolution, the whole day ({len(paths)} files, {sum(p.stat().st_size for p in paths) / 1e6:.0f}"
          f" MB), best of {repeat}")
    print(f"  {'read':<58}" + "".join(f" | {c:>12}" for c in ("seconds", "samples/s", "vs so3g")))
    for label, names in sets.items():
        reader = Reader(index, cache_mb)
        reader.resolve(names)
        cold, result = best(lambda r=reader, n=names: cold_read(r, n, t0, t1), repeat)
        warm, _ = best(lambda r=reader, n=names: r.data(n, t0, t1), repeat)
        before, before_result = best(lambda r=reader, n=names: spt3g_only(r, n, t0, t1), repeat)
        n = samples(result)
        assert n == samples(before_result)
        so3g = so3g_read(so3g_python, paths, names, t0, t1, repeat) if so3g_python else None
        if so3g is not None:
            assert so3g["samples"] == n, f"so3g read {so3g['samples']} samples, sisock {n}"
        reference = so3g["read"] if so3g else math.nan
        print(f"{label}: {n:,} samples")
        rows = [("sisock get_data, cold (frames from their bytes)", cold),
                ("sisock get_data, warm (frames cached)", warm),
                ("sisock get_data, cold, every frame decoded by spt3g (before)", before)]
        if so3g is not None:
            rows += [("so3g HKArchiveScanner: read (after its scan)", so3g["read"]),
                     ("so3g HKArchiveScanner: scan + read", so3g["scan"] + so3g["read"])]
        rows += [("limit: raw G3Reader (reads, no decoding)", best(lambda: raw_read(paths), repeat)[0]),
                 ("limit: G3Reader + decode every block", best(lambda: decode_read(paths), repeat)[0])]
        for name, seconds in rows:
            rate = f"{n / seconds:,.0f}" if "limit" not in name else ""
            print(f"  {name:<58} | {seconds:12.3f} | {rate:>12} | {reference / seconds:11.1f}x", flush=True)


def bench_many_files(directory: Path, count: int) -> None:
    """Rescan time of an unchanged archive of ``count`` small files."""
    small = Archive(providers(0.01)[:1], END - count * 60.0, END, file_seconds=60.0, frame_seconds=60.0)
    written, _ = timed(lambda: small.write(directory / "many"))
    index = open_index(load({"SQLITE_PATH": str(directory / "many.sqlite")}))
    index.ensure_schema()
    scanner = Scanner(index, directory / "many")
    first, _ = timed(scanner.scan_once)
    rescan, stats = timed(scanner.scan_once)
    assert stats.read == 0
    print(f"\n(a) {count} small files (written in {written:.1f} s): first scan {first:.1f} s, "
          f"rescan of the unchanged archive {rescan:.3f} s")


def metrics_cost(directory: Path, size: int, repeat: int, every: float) -> None:
    """The first scan with the scanner's metrics counted, served and scraped every ``every`` seconds, and
    with its instruments made no-ops and no endpoint, in turn (each the best of ``repeat``)."""
    import threading
    import urllib.request

    from sisock.metrics import Endpoint, scanner as scanner_metrics
    from sisock.http.auth import Authenticator

    counted = scanner_metrics.stored
    endpoint = Endpoint("127.0.0.1", 0, Authenticator.of(None, None))
    stop = threading.Event()

    def scrape():
        while not stop.wait(every):
            with urllib.request.urlopen(f"http://127.0.0.1:{endpoint.port}/metrics", timeout=10) as answer:
                answer.read()

    threading.Thread(target=scrape, daemon=True).start()
    best = {"on": math.inf, "off": math.inf}
    try:
        for run in range(repeat):
            for way in (("on", "off") if run % 2 == 0 else ("off", "on")):
                scanner_metrics.stored = counted if way == "on" else (lambda *args: None)  # type: ignore[assignment]
                _, _, seconds = scan(directory / "archive", directory / f"metrics-{way}{run}.sqlite")
                best[way] = min(best[way], seconds)
    finally:
        stop.set()
        scanner_metrics.stored = counted  # type: ignore[assignment]
    on, off = size / 1e6 / best["on"], size / 1e6 / best["off"]
    print(f"\nmetrics: first scan, best of {repeat} in turn: {on:.0f} MB/s with metrics counted and scraped every "
          f"{every:g} s, {off:.0f} MB/s without ({(on - off) / off:+.1%})", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.0, help="size of the one-day archive (default 1.0)")
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one, removed after)")
    parser.add_argument("--many-files", type=int, default=10000, help="files for the rescan figure (0 = skip)")
    parser.add_argument("--cache-mb", type=int, default=0, help="reader cache (default: 1.2 x the archive)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each read and scan; the fastest counts (default 3)")
    parser.add_argument("--before", type=Path, help="a checkout of an earlier sisock (a git worktree): its first scan "
                        "of the same archive is printed beside this one's")
    parser.add_argument("--so3g", help="a Python interpreter with so3g installed: (d) reads beside so3g's")
    parser.add_argument("--only-full-resolution", action="store_true", help="with --dir: reuse its archive and "
                        "index, run (d) alone")
    parser.add_argument("--metrics", type=float, default=0.0, metavar="SECONDS",
                        help="only the cost of metrics: first scans with the scanner's metrics counted and scraped "
                        "every SECONDS, and without them, in turn")
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="sisock-bench-g3-"))
    try:
        factor = scale_for(args.size_gb)
        archive = Archive(providers(factor), END - DAY, END, file_seconds=HOUR, frame_seconds=60.0)
        print(f"one-day archive: 5 providers, 50 fields at {factor:.2f} x (1, 2, 5, 10) Hz, hourly files, 60 s frames")
        if args.only_full_resolution:
            paths = sorted((directory / "archive").rglob("*.g3"))
            if not paths:
                paths = archive.write(directory / "archive")
            index_path = directory / "index-full.sqlite"
            index = open_index(load({"SQLITE_PATH": str(index_path)}))
            index.ensure_schema()
            Scanner(index, directory / "archive").scan_once()
            size = sum(p.stat().st_size for p in paths)
            bench_full_resolution(index, archive, paths, args.cache_mb or math.ceil(size / 1e6 * 1.2), args.repeat,
                                  args.so3g)
            return 0
        written, paths = timed(lambda: archive.write(directory / "archive"))
        os.sync()  # the archive's writeback would otherwise run during the scans
        size = sum(p.stat().st_size for p in paths)
        print(f"written: {len(paths)} files, {size / 1e6:.0f} MB in {written:.1f} s")
        if args.metrics:
            metrics_cost(directory, size, args.repeat, args.metrics)
            return 0
        plain_s = first = before = math.inf
        for run in range(args.repeat):  # interleaved, each the best of its runs: the machine's drift hits all alike
            _, plain, seconds = scan(directory / "archive", directory / f"plain{run}.sqlite", summarise=False)
            plain_s = min(plain_s, seconds)
            index, stats, seconds = scan(directory / "archive", directory / f"index{run}.sqlite")
            first = min(first, seconds)
            if args.before:
                before = min(before, scan_before(args.before, directory / "archive", directory / f"before{run}.sqlite"))
        rescan, again = timed(Scanner(index, directory / "archive").scan_once)
        print(f"\n(a) first scan, best of {args.repeat}: {first:.2f} s, {stats.bytes / 1e6 / first:.0f} MB/s,"
              f" {stats.frames / first:,.0f} frames/s; without summaries {plain.bytes / 1e6 / plain_s:.0f} MB/s"
              f" (with them: {plain_s / first:.0%} of that rate); rescan of the unchanged archive: {rescan:.4f} s"
              f" ({again.read} files read)")
        if args.before:
            print(f"    the scanner of {args.before}: {before:.2f} s, {size / 1e6 / before:.0f} MB/s (this one, with"
                  f" summaries: {before / first:.0%} of that rate)")
        raw, frames = timed(lambda: raw_read(paths))
        print(f"    raw G3Reader over the whole archive: {raw:.2f} s, {size / 1e6 / raw:.0f} MB/s, "
              f"{frames / raw:,.0f} frames/s (the scan's limit)")
        bench_reads(index, archive, paths, args.cache_mb or math.ceil(size / 1e6 * 1.2), args.repeat)
        bench_full_resolution(index, archive, paths, args.cache_mb or math.ceil(size / 1e6 * 1.2), args.repeat,
                              args.so3g)
        if args.many_files:
            bench_many_files(directory, args.many_files)
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
