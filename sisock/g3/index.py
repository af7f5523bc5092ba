"""The index database of the .g3 archive: MySQL/MariaDB (PyMySQL) or embedded SQLite.

Seed-compatible tables ``feeds`` (one row per file and provider), ``fields``
and ``description``, plus what makes scans incremental and reads fast:
``files`` (size, mtime, how far it was read, ok/bad and why) and ``frames``
(byte offset, size and time range of every data frame). Both backends run the
same parameterised queries; only the table definitions differ. Every write of
one file is one transaction.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import pymysql

from sisock.config import Config
from sisock.g3 import revisions, schema, summaries, window
from sisock.g3.filescan import FieldEntry, FileScan, FrameEntry

#: PyMySQL errors that mean the connection is gone (server restarted, killed, timed out).
_LOST = (2006, 2013, 2014, 2045, 2055, 1927, 4031)


def sql_time(unix: float) -> str:
    """A DATETIME(6) literal (UTC) that compares correctly as text in SQLite too."""
    return datetime.fromtimestamp(unix, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def unix_time(value) -> float:
    """UNIX seconds of a DATETIME read back (a datetime from MySQL, a string from SQLite)."""
    if isinstance(value, str):
        value = datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f")
    return value.replace(tzinfo=timezone.utc).timestamp()


@dataclass(frozen=True)
class FileRow:
    """What the index knows of one file."""

    id: int
    path: str
    size: int
    mtime_ns: int
    scanned_to: int
    status: str
    error: Optional[str]
    fingerprint: Optional[str] = None
    #: whether the file's summaries are complete (files indexed before version 4 are read again)
    summarized: int = 0
    #: whether its summaries carry their moments (files summarised before version 7 are read again)
    moments: int = 0

    def state(self) -> tuple:
        """What a scan of this file was based on (compared before its result is written)."""
        return (self.size, self.mtime_ns, self.scanned_to, self.status, self.fingerprint, self.summarized,
                self.moments)


class IndexChanged(RuntimeError):
    """A file's row is not what its scan started from (another writer): nothing was stored."""


class Index:
    """One connection (re-made after the server restarts), guarded by a lock for threads."""

    def __init__(self, connect: Callable[[], object], dialect: str) -> None:
        self._connect = connect
        self.dialect = dialect
        self._conn = None
        self._lock = threading.RLock()

    # -- connections and transactions ------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "mysql" else sql

    def _connection(self):
        if self._conn is not None and self.dialect == "mysql":
            try:
                self._conn.ping(reconnect=False)
            except pymysql.err.Error:
                self._drop_connection()
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _drop_connection(self) -> None:
        try:
            if self._conn is not None:
                self._conn.close()
        except Exception:
            pass
        self._conn = None

    @contextmanager
    def transaction(self) -> Iterator["Cursor"]:
        """A cursor inside one transaction: committed at the end, rolled back on error."""
        with self._lock:
            conn = self._connection()
            if self.dialect == "sqlite":
                conn.execute("BEGIN")
            else:
                conn.begin()
            try:
                yield Cursor(conn.cursor(), self._sql)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    def run(self, work: Callable[["Cursor"], object]):
        """Run ``work(cursor)`` in a transaction; once more on a fresh connection if the server went away."""
        with self._lock:
            try:
                with self.transaction() as cur:
                    return work(cur)
            except pymysql.err.OperationalError as exc:
                if exc.args and exc.args[0] in _LOST:
                    self._drop_connection()
                    with self.transaction() as cur:
                        return work(cur)
                raise
            except pymysql.err.InterfaceError:
                self._drop_connection()
                with self.transaction() as cur:
                    return work(cur)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._conn is not None:
                self._drop_connection()

    # -- schema ------------------------------------------------------------------
    def ensure_schema(self) -> str:
        """Create missing tables, upgrade an older schema; return what was done (the scanner's job)."""
        return schema.ensure(self)

    def schema_version(self) -> int:
        """The schema version the index has now (0: none yet)."""
        return schema.version(self)

    # -- the scanner's side ------------------------------------------------------
    def files(self) -> Dict[str, FileRow]:
        """Every indexed file by path."""
        rows = self.run(lambda cur: cur.all(
            "SELECT id, path, size, mtime_ns, scanned_to, status, error, fingerprint, summarized, moments FROM files"))
        return {r[1]: FileRow(*r) for r in rows}

    def providers_of(self, file_id: int) -> Dict[int, str]:
        """``{prov_id: description}`` already known for a file (to read a grown file on)."""
        rows = self.run(lambda cur: cur.all("SELECT prov_id, description FROM feeds WHERE file_id = ?", (file_id,)))
        return dict(rows)

    def remove_file(self, row: FileRow) -> None:
        """Forget a file that is gone, in one transaction; its providers' catalogue rows are made
        again from the files that are left."""
        def work(cur: "Cursor") -> None:
            descriptions = [r[0] for r in cur.all("SELECT DISTINCT description FROM feeds WHERE file_id = ?",
                                                  (row.id,))]
            revisions.before_remove(cur, row.id)
            self._remove(cur, row.id, keep_file_row=False)
            for description in descriptions:
                cur.execute("DELETE FROM catalogue WHERE description = ?", (description,))
                cur.execute(schema.FILL_CATALOGUE.format(where=" AND fe.description = ?", **schema.VALUE_TYPE),
                            (description,))
            _next_generation(cur)
        self.run(work)

    def _remove(self, cur: "Cursor", file_id: int, keep_file_row: bool) -> None:
        summaries.remove_file(cur, file_id)
        cur.execute("DELETE FROM frames WHERE feed_id IN (SELECT id FROM feeds WHERE file_id = ?)", (file_id,))
        cur.execute("DELETE FROM fields WHERE feed_id IN (SELECT id FROM feeds WHERE file_id = ?)", (file_id,))
        cur.execute("DELETE FROM feeds WHERE file_id = ?", (file_id,))
        if not keep_file_row:
            cur.execute("DELETE FROM files WHERE id = ?", (file_id,))
        cur.execute("DELETE FROM description WHERE description NOT IN "
                    "(SELECT description FROM feeds WHERE description IS NOT NULL)")

    def store_file(self, path: Path, size: int, mtime_ns: int, scan: FileScan, previous: Optional[FileRow]) -> None:
        """Record one file's scan in one transaction (a scan from offset 0 replaces what was there).

        Safe to repeat: the transaction first reads the file's row. If it already holds this
        scan's result, an earlier attempt committed (its reply was lost) and nothing is written;
        if it holds neither that nor what the scan started from, :class:`IndexChanged` is raised.
        """
        self.run(lambda cur: self._store(cur, path, size, mtime_ns, scan, previous))

    def _store(self, cur: "Cursor", path: Path, size: int, mtime_ns: int, scan: FileScan,
               previous: Optional[FileRow]) -> None:
        lock = " FOR UPDATE" if self.dialect == "mysql" else ""
        row = cur.one("SELECT size, mtime_ns, scanned_to, status, fingerprint, summarized, moments FROM files "
                      f"WHERE path = ?{lock}", (str(path),))
        # a file read from the start has complete summaries, with moments; one read on keeps what it had
        complete = int(scan.start_offset == 0 or (previous is not None and bool(previous.summarized)))
        moments = int(scan.start_offset == 0 or (previous is not None and bool(previous.moments)))
        if row == (size, mtime_ns, scan.scanned_to, scan.status, scan.fingerprint, complete, moments):
            return
        if row != (None if previous is None else previous.state()):
            raise IndexChanged(f"{path}: its index row changed while it was read; it is read again next pass")
        revisions.before_store(cur, None if previous is None else previous.id, scan.start_offset == 0,
                               scan.providers, scan.frames)
        now = sql_time(time.time())
        if previous is None:
            cur.execute("INSERT INTO files (path, size, mtime_ns, scanned_to, status, error, scanned, fingerprint) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (str(path), size, mtime_ns, scan.scanned_to, scan.status,
                                                            scan.error, now, scan.fingerprint))
            file_id = cur.one("SELECT id FROM files WHERE path = ?",  # type: ignore[index]
                              (str(path),))[0]  # inserted above
        else:
            file_id = previous.id
            if scan.start_offset == 0:
                self._remove(cur, file_id, keep_file_row=True)
            cur.execute("UPDATE files SET size = ?, mtime_ns = ?, scanned_to = ?, status = ?, error = ?, scanned = ?, "
                        "fingerprint = ? WHERE id = ?", (size, mtime_ns, scan.scanned_to, scan.status, scan.error, now,
                                                         scan.fingerprint, file_id))
        feeds = self._feeds(cur, file_id, path, scan.providers, now)
        cur.executemany("INSERT INTO frames (feed_id, byte_offset, nbytes, t_start, t_end) VALUES (?, ?, ?, ?, ?)",
                        [(feeds[f.prov_id], f.byte_offset, f.nbytes, f.t_start, f.t_end)
                         for f in scan.frames if f.prov_id in feeds])
        self._spans(cur, feeds, scan.frames)
        self._fields(cur, feeds, scan.fields)
        self._catalogue(cur, scan.providers, scan.fields)
        summaries.store(cur, {p: (feeds[p], scan.providers[p]) for p in feeds}, scan.summaries)
        self._catalogue_widths(cur, file_id)
        cur.execute("UPDATE files SET summarized = ?, moments = ? WHERE id = ?", (complete, moments, file_id))
        _next_generation(cur)

    @staticmethod
    def _spans(cur: "Cursor", feeds: Dict[int, int], frames: List[FrameEntry]) -> None:
        """Widen each feed's time range to its new frames."""
        spans: Dict[int, Tuple[float, float]] = {}
        for f in frames:
            lo, hi = spans.get(f.prov_id, (f.t_start, f.t_end))
            spans[f.prov_id] = (min(lo, f.t_start), max(hi, f.t_end))
        for prov_id, (lo, hi) in spans.items():
            if prov_id in feeds:
                cur.execute("UPDATE feeds SET t_start = CASE WHEN t_start IS NULL OR t_start > ? THEN ? ELSE t_start "
                            "END, t_end = CASE WHEN t_end IS NULL OR t_end < ? THEN ? ELSE t_end END WHERE id = ?",
                            (lo, lo, hi, hi, feeds[prov_id]))
                # the longest feed bounds every window's search (sisock.g3.window)
                cur.execute("UPDATE description SET max_span = (SELECT t_end - t_start FROM feeds WHERE id = ?) "
                            "WHERE description = (SELECT description FROM feeds WHERE id = ?) AND (max_span IS NULL "
                            "OR max_span < (SELECT t_end - t_start FROM feeds WHERE id = ?))",
                            (feeds[prov_id],) * 3)

    def _feeds(self, cur: "Cursor", file_id: int, path: Path, providers: Dict[int, str], now: str) -> Dict[int, int]:
        """``{prov_id: feed id}`` for this file, making the rows that are missing."""
        rows = cur.all("SELECT prov_id, id, description FROM feeds WHERE file_id = ?", (file_id,))
        feeds = {r[0]: r[1] for r in rows}
        known = {r[0] for r in cur.all("SELECT description FROM description")}
        for prov_id, description in sorted(providers.items()):
            if prov_id in feeds:
                continue
            cur.execute("INSERT INTO feeds (filename, path, prov_id, description, scanned, file_id) "
                        "VALUES (?, ?, ?, ?, ?, ?)", (path.name, str(path.parent), prov_id, description, now, file_id))
            feeds[prov_id] = cur.one("SELECT id FROM feeds WHERE file_id = ? AND prov_id = ?",  # type: ignore[index]
                                     (file_id, prov_id))[0]  # inserted above
            if description not in known:
                cur.execute("INSERT INTO description (description) VALUES (?)", (description,))
                known.add(description)
        cur.execute("UPDATE feeds SET scanned = ? WHERE file_id = ?", (now, file_id))
        return feeds

    def _fields(self, cur: "Cursor", feeds: Dict[int, int], found: Dict[Tuple[int, str], FieldEntry]) -> None:
        by_feed = {v: k for k, v in feeds.items()}
        ids = list(by_feed)
        old = {}
        if ids:
            marks = ", ".join("?" * len(ids))
            for feed_id, name, start, end in cur.all(
                    f"SELECT feed_id, field, `start`, `end` FROM fields WHERE feed_id IN ({marks})", ids):
                old[(by_feed[feed_id], name)] = (unix_time(start), unix_time(end))
        inserts = []
        for (prov_id, name), entry in found.items():
            if prov_id not in feeds:
                continue
            if (prov_id, name) in old:
                start, end = old[(prov_id, name)]
                cur.execute("UPDATE fields SET `start` = ?, `end` = ? WHERE feed_id = ? AND field = ?",
                            (sql_time(min(start, entry.start)), sql_time(max(end, entry.end)), feeds[prov_id], name))
            else:
                inserts.append((feeds[prov_id], name, sql_time(entry.start), sql_time(entry.end), entry.block,
                                entry.type, entry.value_type))
        cur.executemany("INSERT INTO fields (feed_id, field, `start`, `end`, block, type, value_type) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)", inserts)

    @staticmethod
    def _catalogue(cur: "Cursor", providers: Dict[int, str], found: Dict[Tuple[int, str], FieldEntry]) -> None:
        """Widen the catalogue rows of the fields a scan found (new ones are added); a field's value type
        is the one of its newest file (a scan that reaches its end, or one filling it in)."""
        by_description: Dict[Tuple[str, str], FieldEntry] = {}
        for (prov_id, name), entry in found.items():
            if prov_id in providers:
                by_description[(providers[prov_id], name)] = entry
        descriptions = sorted({d for d, _ in by_description})
        if not descriptions:
            return
        marks = ", ".join("?" * len(descriptions))
        old = {(r[0], r[1]): (r[2], r[3], r[4]) for r in cur.all(
            f"SELECT description, field, t_start, t_end, value_type FROM catalogue WHERE description IN ({marks})",
            descriptions)}
        inserts, updates = [], []
        for (description, name), entry in sorted(by_description.items()):
            if (description, name) not in old:
                inserts.append((description, name, entry.block, entry.type, entry.start, entry.end, entry.value_type))
                continue
            lo, hi, value_type = old[(description, name)]
            newest = entry.end >= hi or value_type is None
            if entry.start < lo or entry.end > hi or (newest and value_type != entry.value_type):
                updates.append((min(lo, entry.start), max(hi, entry.end), entry.block, entry.type,
                                entry.value_type if newest else value_type, description, name))
        cur.executemany("INSERT INTO catalogue (description, field, block, type, t_start, t_end, value_type) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)", inserts)
        cur.executemany("UPDATE catalogue SET t_start = ?, t_end = ?, block = ?, type = ?, value_type = ? "
                        "WHERE description = ? AND field = ?", updates)

    @staticmethod
    def _catalogue_widths(cur: "Cursor", file_id: int) -> None:
        """Raise the catalogue's widths to this file's summary rows (an upper bound: the reader
        looks for coarse rows in a window only for fields that have some)."""
        cur.executemany("UPDATE catalogue SET width = ? WHERE description = ? AND field = ? AND width < ?",
                        [(w, d, f, w) for d, f, w in cur.all(
                            "SELECT fe.description, sf.field, sf.width FROM summaries_file sf "
                            "JOIN feeds fe ON fe.id = sf.feed_id WHERE fe.file_id = ? AND sf.width > ?",
                            (file_id, summaries.FINE))])

    # -- the reader's side -------------------------------------------------------
    def fields_in(self, start: float, end: float) -> List[Tuple[str, str, str, str, Optional[str]]]:
        """``(description, field, block, type, value_type)`` of the fields whose provider has a data frame in
        ``[start, end)`` and whose own range (first to last file that has it) meets the window.

        The catalogue gives the candidates; one indexed probe per provider checks that it has
        samples in the window (a window in a gap has none), so a year-long window costs what an
        hour does."""
        def work(cur: "Cursor") -> List[Tuple[str, str, str, str, Optional[str]]]:
            rows = cur.all("SELECT description, field, block, type, value_type FROM catalogue "
                           "WHERE t_start < ? AND t_end >= ? ORDER BY description, field", (end, start))
            live = {d for d in sorted({r[0] for r in rows}) if cur.one(
                f"SELECT 1 FROM feeds fe WHERE fe.description = ? AND {window.overlaps()} "
                "AND ((fe.t_start >= ? AND fe.t_end < ?) OR EXISTS "
                "(SELECT 1 FROM frames fr WHERE fr.feed_id = fe.id AND fr.t_start < ? AND fr.t_end >= ?)) LIMIT 1",
                (d, *window.bounds(start, end), start, end, end, start))}
            return [r for r in rows if r[0] in live]
        return self.run(work)

    def generation(self) -> int:
        """The index's generation: it changes in the transaction of every change to what the
        index holds, so two readers that saw the same generation saw the same index."""
        row = self.run(lambda cur: cur.one("SELECT MAX(value) FROM generation"))
        return int(row[0]) if row and row[0] is not None else 0

    def revisions(self, descriptions: Sequence[str]) -> Dict[str, int]:
        """``{description: revision}``: a provider's revision changes whenever samples the index held for
        it may have changed, never for appends after its newest time (:mod:`sisock.g3.revisions`)."""
        return self.run(lambda cur: revisions.of(cur, descriptions))

    def coverage(self, descriptions: Sequence[str], start: float, end: float) -> Dict[str, List[Tuple[float, float]]]:
        """``{description: [(first, last), ...]}``: the time ranges of the provider's indexed data
        frames that meet ``[start, end]``, in order, overlapping ones merged. The archive holds
        every sample of a provider inside these ranges (the aggregator records all it receives)."""
        if not descriptions:
            return {}
        marks = ", ".join("?" * len(descriptions))
        rows = self.run(lambda cur: cur.all(
            "SELECT fe.description, fr.t_start, fr.t_end FROM frames fr JOIN feeds fe ON fe.id = fr.feed_id "
            f"WHERE fe.description IN ({marks}) AND {window.overlaps()} AND fr.t_start <= ? AND fr.t_end >= ? "
            "ORDER BY fe.description, fr.t_start", (*descriptions, *window.bounds(start, end), end, start)))
        return summaries.merged_by_description(rows)

    def known_fields(self) -> List[Tuple[str, str, str, str, Optional[str]]]:
        """``(description, field, block, type, value_type)`` of every field ever indexed (to resolve names)."""
        return self.run(lambda cur: cur.all("SELECT description, field, block, type, value_type FROM catalogue"))

    def frames_in(self, descriptions: Sequence[str], start: float, end: float) -> List[tuple]:
        """``(path, size, mtime_ns, byte_offset, nbytes, description, t_start, t_end)`` of the data
        frames of ``descriptions`` overlapping ``[start, end)``, in file and offset order."""
        if not descriptions:
            return []
        marks = ", ".join("?" * len(descriptions))
        sql = ("SELECT f.path, f.size, f.mtime_ns, fr.byte_offset, fr.nbytes, fe.description, fr.t_start, fr.t_end "
               "FROM frames fr "
               "JOIN feeds fe ON fe.id = fr.feed_id JOIN files f ON f.id = fe.file_id "
               f"WHERE fe.description IN ({marks}) AND {window.overlaps()} AND fr.t_start < ? AND fr.t_end >= ? "
               "ORDER BY f.path, fr.byte_offset")
        return self.run(lambda cur: cur.all(sql, (*descriptions, *window.bounds(start, end), end, start)))

    def indexed_until(self, descriptions: Sequence[str]) -> Dict[str, float]:
        """``{description: the end of its newest indexed frame}``: where the archive's part of a
        joined series stops (sisock-http takes the live feed's samples after it)."""
        if not descriptions:
            return {}
        marks = ", ".join("?" * len(descriptions))
        rows = self.run(lambda cur: cur.all(f"SELECT description, MAX(t_end) FROM feeds WHERE description IN ({marks}) "
                                            "GROUP BY description", tuple(descriptions)))
        return {d: float(t) for d, t in rows if t is not None}

    def newest_per_provider(self) -> Dict[str, float]:
        """``{description: the end of its newest indexed frame}`` for every provider (its health)."""
        rows = self.run(lambda cur: cur.all("SELECT description, MAX(t_end) FROM feeds GROUP BY description"))
        return {d: float(t) for d, t in rows if t is not None}

    def bad_files(self) -> int:
        """How many files are recorded bad (a damaged frame, read again only when they change)."""
        row = self.run(lambda cur: cur.one("SELECT COUNT(*) FROM files WHERE status = 'bad'"))
        return int(row[0]) if row else 0

    def refresh_summaries(self) -> int:
        """Rebuild the coarse summary tiers where files changed since the last time; how many stretches."""
        return summaries.refresh(self)

    def unsummarized(self, descriptions: Sequence[str], start: float, end: float) -> set:
        """Those of ``descriptions`` with a file overlapping ``[start, end)`` whose summaries are
        not complete yet (read before version 4, or still being read for the first time)."""
        if not descriptions:
            return set()
        def work(cur: "Cursor") -> set:
            # the files not summarised first (an index, usually none), not the window's feeds
            if cur.one("SELECT 1 FROM files WHERE summarized = 0 LIMIT 1") is None:
                return set()
            marks = ", ".join("?" * len(descriptions))
            return {r[0] for r in cur.all(
                f"SELECT DISTINCT fe.description FROM feeds fe WHERE fe.description IN ({marks}) "
                f"AND {window.overlaps()} AND fe.file_id IN (SELECT id FROM files WHERE summarized = 0)",
                (*descriptions, *window.bounds(start, end)))}
        return self.run(work)

    def without_moments(self, descriptions: Sequence[str], start: float,
                        end: float) -> Dict[str, List[Tuple[float, float]]]:
        """``{description: [(first, last), ...]}``: the time ranges of the files overlapping ``[start, end)``
        whose summary rows lack moments (written before version 7, until the scanner has read them again)."""
        if not descriptions:
            return {}

        def work(cur: "Cursor") -> Dict[str, List[Tuple[float, float]]]:
            if cur.one("SELECT 1 FROM files WHERE moments = 0 LIMIT 1") is None:  # usually none: one probe
                return {}
            marks = ", ".join("?" * len(descriptions))
            out: Dict[str, List[Tuple[float, float]]] = {}
            for description, lo, hi in cur.all(
                    f"SELECT fe.description, fe.t_start, fe.t_end FROM feeds fe JOIN files f ON f.id = fe.file_id "
                    f"WHERE fe.description IN ({marks}) AND {window.overlaps()} AND f.moments = 0",
                    (*descriptions, *window.bounds(start, end))):
                out.setdefault(description, []).append((float(lo), float(hi)))
            return out
        return self.run(work)


def _next_generation(cur: "Cursor") -> None:
    cur.execute("UPDATE generation SET value = value + 1")


class Cursor:
    """A DB-API cursor that takes ``?`` placeholders on both backends."""

    def __init__(self, cursor, translate: Callable[[str], str]) -> None:
        self._cursor = cursor
        self._sql = translate

    def execute(self, sql: str, params: Iterable = ()) -> None:
        self._cursor.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: List[tuple]) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), rows)

    def all(self, sql: str, params: Iterable = ()) -> List[tuple]:
        self.execute(sql, params)
        return [tuple(r) for r in self._cursor.fetchall()]

    def one(self, sql: str, params: Iterable = ()) -> Optional[tuple]:
        self.execute(sql, params)
        row = self._cursor.fetchone()
        return None if row is None else tuple(row)


class IndexUnavailable(RuntimeError):
    """The index cannot be opened; the text names it and the cause."""


#: Bytes of a new SQLite index's pages: a 60 s summary row of an hourly file (2.3 KB with its moments)
#: took a 4 KiB page of its own (two no longer fit); 16 KiB pages hold seven, and a coarse row (10 KB)
#: without overflow pages: the bench's index 17% smaller (docs/g3.md).
SQLITE_PAGE = 16384


def _sqlite(path: Path) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=60)
            conn.execute(f"PRAGMA page_size={SQLITE_PAGE}")  # a new file's only; before WAL, which fixes it
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except (sqlite3.OperationalError, OSError) as exc:
            raise IndexUnavailable(f"cannot open the index {path}: {sqlite_problem(path, exc)}") from None
        return conn
    return connect


def sqlite_problem(path: Path, error: Exception) -> str:
    """Why SQLite could not open ``path`` (its own words, "unable to open database file", name neither
    the file nor the cause)."""
    folder = path.parent
    if not folder.is_dir():
        return f"{folder} is not a folder"
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        return (f"{folder} is on a read-only file system (SQLite writes its -wal and -shm files beside the "
                f"index; with systemd, ReadWritePaths= must name it)")
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} is not writable by this user (SQLite writes its -wal and -shm files beside the index)"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"{path} is not readable and writable by this user"
    return str(error)


def _mysql(config: Config) -> Callable[[], pymysql.Connection]:
    settings = dict(host=config.sql_host, port=config.sql_port, user=config.sql_user, password=config.sql_passwd,
                    autocommit=False, charset="utf8mb4", connect_timeout=10, read_timeout=60,
                    write_timeout=60, init_command="SET time_zone = '+00:00'")

    def connect() -> pymysql.Connection:
        try:
            return pymysql.connect(database=config.sql_db, **settings)
        except pymysql.err.OperationalError as exc:
            if exc.args[0] != 1049:  # unknown database: make it
                raise
        with pymysql.connect(**settings) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{config.sql_db}`")
        return pymysql.connect(database=config.sql_db, **settings)
    return connect


def open_index(config: Config) -> Index:
    """The index named by the configuration: MySQL/MariaDB when SQL_HOST is set, else SQLite."""
    if config.sql_enabled:
        return Index(_mysql(config), "mysql")
    return Index(_sqlite(config.sqlite_path), "sqlite")
