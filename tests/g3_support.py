"""Shared by the g3 tests: an index on each backend (real MariaDB, SQLite) and small archives."""
from __future__ import annotations

import uuid
import zlib
from pathlib import Path
from typing import Dict

import numpy as np
import pymysql
import pytest

from sisock.config import load
from sisock.g3.index import Index, open_index, unix_time
from sisock.g3.reader import Reader
from sisock.g3.writer import Archive, Block, Provider

#: A fixed end time (UTC 2023-11-14 22:13:20) so archives do not depend on the clock.
END = 1_700_000_000.0

PROVIDERS = [
    Provider("observatory.LS240_1.feeds.temperatures", (
        Block("fast", ("ch0", "ch1"), 5.0), Block("slow", ("heater",), 1.0), Block("mode", ("state",), 0.1, "string"))),
    Provider("observatory.LS240_2.feeds.temperatures", (Block("fast", ("ch0",), 2.0),)),
    Provider("observatory.weather.feeds.station", (Block("met", ("wind", "pressure"), 1.0),
                                                    Block("flags", ("dome_open",), 0.5, "bool"))),
]


def small_archive(start: float = END - 1800, end: float = END, gaps=((END - 1000, END - 700),)) -> Archive:
    """Three providers, 30 minutes in files of 10 minutes, frames of 60 s, one 5-minute gap."""
    return Archive(PROVIDERS, start, end, file_seconds=600, frame_seconds=60, gaps=list(gaps))


@pytest.fixture(params=["sqlite", "mysql"])
def g3_env(request, tmp_path) -> Dict[str, str]:
    """Environment naming an empty index: an SQLite file, or a fresh database on the real MariaDB."""
    env = {"DATA_DIRECTORY": str(tmp_path / "archive"), "LOGLEVEL": "info"}
    if request.param == "sqlite":
        env["SQLITE_PATH"] = str(tmp_path / "index.sqlite")
        yield env
        return
    name = f"sisock_test_{uuid.uuid4().hex[:12]}"
    env.update({"SQL_HOST": "127.0.0.1", "SQL_PORT": "3306", "SQL_USER": "root", "SQL_PASSWD": "", "SQL_DB": name})
    yield env
    with pymysql.connect(host="127.0.0.1", user="root", password="") as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def make_index(env: Dict[str, str]) -> Index:
    """An index for the environment, schema in place."""
    index = open_index(load(env))
    index.ensure_schema()
    return index


def dump(index: Index) -> dict:
    """Everything the index says about the archive, free of row ids (to compare two indexes)."""
    def work(cur):
        return {
            "files": sorted(cur.all("SELECT path, size, scanned_to, status FROM files")),
            "feeds": sorted(cur.all("SELECT filename, path, prov_id, description FROM feeds")),
            "frames": sorted(cur.all("SELECT f.path, fe.prov_id, fr.byte_offset, fr.nbytes, fr.t_start, fr.t_end "
                                     "FROM frames fr JOIN feeds fe ON fe.id = fr.feed_id "
                                     "JOIN files f ON f.id = fe.file_id")),
            "fields": sorted((r[0], r[1], r[2], unix_time(r[3]), unix_time(r[4]), r[5]) for r in cur.all(
                "SELECT f.path, fe.prov_id, fi.field, fi.`start`, fi.`end`, fi.block FROM fields fi "
                "JOIN feeds fe ON fe.id = fi.feed_id JOIN files f ON f.id = fe.file_id")),
            "description": sorted(cur.all("SELECT description FROM description")),
            "summaries_file": sorted(cur.all(
                "SELECT f.path, fe.prov_id, sf.field, sf.t_start, sf.t_end, sf.data FROM summaries_file sf "
                "JOIN feeds fe ON fe.id = sf.feed_id JOIN files f ON f.id = fe.file_id")),
            "summaries": sorted(cur.all("SELECT description, field, tier, chunk, data FROM summaries")),
            "catalogue": sorted(cur.all("SELECT description, field, block, type, t_start, t_end FROM catalogue")),
        }
    return index.run(work)


def archive_dir(env: Dict[str, str]) -> Path:
    return Path(env["DATA_DIRECTORY"])


def assert_reads_back(index: Index, archive: Archive, t0: float, t1: float) -> None:
    """Every field of every provider reads back exactly what was written in [t0, t1)."""
    reader = Reader(index, 16)
    for provider in archive.providers:
        for block in provider.blocks:
            names = [f"{provider.description}.{f}" for f in block.fields]
            got = reader.data(names, t0, t1)
            for name, field in zip(names, block.fields):
                t, v = archive.samples(provider.description, field, t0, t1)
                if not len(t):
                    assert not any(name in cols for _, cols in got.values())
                    continue
                gt, cols = got[f"{provider.description}.{block.name}"]
                np.testing.assert_array_equal(gt, t)
                np.testing.assert_array_equal(cols[name], v)


def format_2(blob: bytes) -> bytes:
    """A row as version 6 wrote it: the same buckets without their moments (blob format 2)."""
    n = int.from_bytes(blob[1:5], "little")
    table = zlib.decompress(blob[13:])
    assert blob[0] == 3 and len(table) == 12 * 8 * n
    return bytes([2]) + blob[1:13] + zlib.compress(table[:10 * 8 * n], 1)


def as_version_6(index) -> None:
    """What an index of version 6 holds: format 2 rows, no moments flag, no value types."""
    mysql = index.dialect == "mysql"

    def work(cur):
        for table, key in (("summaries_file", "feed_id, field"), ("summaries", "description, field, tier, chunk")):
            for row in cur.all(f"SELECT {key}, data FROM {table}"):
                where = " AND ".join(f"{k} = ?" for k in key.split(", "))
                cur.execute(f"UPDATE {table} SET data = ? WHERE {where}", (format_2(row[-1]), *row[:-1]))
        cur.execute("DROP INDEX files_moments ON files" if mysql else "DROP INDEX files_moments")
        for table, column in (("files", "moments"), ("fields", "value_type"), ("catalogue", "value_type")):
            cur.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        cur.execute("UPDATE schema_version SET version = 6")
    index.run(work)
