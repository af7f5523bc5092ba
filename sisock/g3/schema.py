"""The index schema and its upgrades, idempotent and resumable on both backends.

MariaDB commits every ``CREATE``/``ALTER``/``DROP`` on its own, so a scanner
killed in the middle of making or upgrading the schema leaves it half done.
Each upgrade is therefore a list of actions of one statement each, and every
action first looks at what exists and does nothing if its work is already
there. The version row is written after the last action of a step. Whatever
point a process is killed at, the next start redoes the step and completes it.
Only the scanner changes the schema; the reader waits for it (:func:`version`).
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Set, Tuple

from sisock.g3 import revisions

#: The version this sisock writes; version 1 is the seed's (feeds, fields, description only).
CURRENT = 8

_DIALECTS = {
    "sqlite": {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "path": "TEXT", "blob": "BLOB"},
    "mysql": {"id": "INTEGER PRIMARY KEY AUTO_INCREMENT", "path": "VARCHAR(760)", "blob": "MEDIUMBLOB"},
}

#: Tables as version 2 made them (later versions alter them below).
_V2_TABLES = {
    "schema_version": "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    "files": """CREATE TABLE IF NOT EXISTS files (
        id {id}, path {path} NOT NULL UNIQUE, size BIGINT NOT NULL, mtime_ns BIGINT NOT NULL,
        scanned_to BIGINT NOT NULL, status VARCHAR(16) NOT NULL, error TEXT, scanned DATETIME(6))""",
    "feeds": """CREATE TABLE IF NOT EXISTS feeds (
        id {id}, filename VARCHAR(255), path {path}, prov_id INTEGER, description VARCHAR(255),
        scanned DATETIME(6), file_id INTEGER)""",
    "fields": """CREATE TABLE IF NOT EXISTS fields (
        feed_id INTEGER, field VARCHAR(255), `start` DATETIME(6), `end` DATETIME(6),
        block VARCHAR(255), type VARCHAR(16))""",
    "description": "CREATE TABLE IF NOT EXISTS description (description VARCHAR(255))",
    "frames": """CREATE TABLE IF NOT EXISTS frames (
        feed_id INTEGER NOT NULL, byte_offset BIGINT NOT NULL, nbytes BIGINT NOT NULL,
        t_start DOUBLE NOT NULL, t_end DOUBLE NOT NULL)""",
}
_FRAMES_COLUMNS = "feed_id, byte_offset, nbytes, t_start, t_end"
_V2_INDEXES = [
    ("feeds", "feeds_file", "(file_id)"),
    ("feeds", "feeds_description", "(description)"),
    ("fields", "fields_feed", "(feed_id)"),
    ("frames", "frames_feed", "(feed_id, t_start)"),
]


class SchemaError(RuntimeError):
    """The index has a schema this sisock cannot use (a newer one)."""


# -- what exists -----------------------------------------------------------------------
def tables(cur, dialect: str) -> Set[str]:
    if dialect == "sqlite":
        return {r[0] for r in cur.all("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {r[0] for r in cur.all("SHOW TABLES")}


def _columns(cur, dialect: str, table: str) -> Set[str]:
    if dialect == "sqlite":
        return {r[1] for r in cur.all(f"PRAGMA table_info({table})")}
    return {r[0] for r in cur.all(f"SHOW COLUMNS FROM {table}")}


def _indexes(cur, dialect: str, table: str) -> Set[str]:
    if dialect == "sqlite":
        return {r[0] for r in cur.all("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                                      (table,))}
    return {r[2] for r in cur.all(f"SHOW INDEX FROM {table}")}


def _stored_version(cur, dialect: str) -> int:
    """The version row; 0 when there is none (nothing made yet, or a start killed before writing it)."""
    if "schema_version" not in tables(cur, dialect):
        return 0
    row = cur.one("SELECT MAX(version) FROM schema_version")
    return int(row[0]) if row and row[0] is not None else 0


def _is_seed(cur, dialect: str) -> bool:
    """True while the seed's ``feeds`` table (no ``file_id``) is still there."""
    return "feeds" in tables(cur, dialect) and "file_id" not in _columns(cur, dialect, "feeds")


# -- actions: each one statement, each a no-op when its work is done ---------------------
Action = Callable[[object, str], None]


def _drop_seed(table: str) -> Action:
    def act(cur, dialect):
        if _is_seed(cur, dialect):  # feeds is dropped last, so this stays true until the end
            cur.execute(f"DROP TABLE IF EXISTS {table}")
    return act


def _create(table: str, tables: Optional[dict] = None) -> Action:
    def act(cur, dialect):
        cur.execute((tables or _V2_TABLES)[table].format(**_DIALECTS[dialect]))
    return act


#: Tables version 4 adds: the summary tiers (:mod:`sisock.g3.summaries`).
_V4_TABLES = {
    "summaries_file": """CREATE TABLE IF NOT EXISTS summaries_file (
        feed_id INTEGER NOT NULL, field VARCHAR(255) NOT NULL, t_start DOUBLE NOT NULL, t_end DOUBLE NOT NULL,
        data {blob} NOT NULL)""",
    "summaries": """CREATE TABLE IF NOT EXISTS summaries (
        description VARCHAR(255) NOT NULL, field VARCHAR(255) NOT NULL, tier INTEGER NOT NULL,
        chunk BIGINT NOT NULL, data {blob} NOT NULL)""",
    "summaries_dirty": """CREATE TABLE IF NOT EXISTS summaries_dirty (
        id {id}, description VARCHAR(255) NOT NULL, t_start DOUBLE NOT NULL, t_end DOUBLE NOT NULL)""",
}


#: Tables version 5 adds: one row per field of a provider, so a window's fields are found
#: without joining every file's fields (a year of hourly files holds half a million).
_V5_TABLES = {
    "catalogue": """CREATE TABLE IF NOT EXISTS catalogue (
        description VARCHAR(255) NOT NULL, field VARCHAR(255) NOT NULL, block VARCHAR(255), type VARCHAR(16),
        t_start DOUBLE NOT NULL, t_end DOUBLE NOT NULL, width DOUBLE NOT NULL DEFAULT 60)""",
}
#: The catalogue of what the index already holds (a field's range: its provider's files that have
#: it; its width: the widest of its summary rows, an upper bound the reader starts from).
#: ``{value_type}`` and ``{of_fields}`` are empty before version 7 (no value_type column yet), else
#: :data:`VALUE_TYPE`'s.
FILL_CATALOGUE = ("INSERT INTO catalogue (description, field, block, type, t_start, t_end, width{value_type}) "
                  "SELECT fe.description, fi.field, MAX(fi.block), MAX(fi.type), MIN(fe.t_start), MAX(fe.t_end), "
                  "COALESCE(MAX(sf.width), 60){of_fields} FROM feeds fe JOIN fields fi ON fi.feed_id = fe.id "
                  "LEFT JOIN summaries_file sf ON sf.feed_id = fe.id AND sf.field = fi.field "
                  "WHERE fe.t_start IS NOT NULL{where} GROUP BY fe.description, fi.field")
VALUE_TYPE = {"value_type": ", value_type", "of_fields": ", MAX(fi.value_type)"}


#: Version 6: a number the scanner raises in every transaction that changes what the index holds,
#: so that every reader process sees the same names and newest times at the same moment.
_V6_TABLES = {"generation": "CREATE TABLE IF NOT EXISTS generation (value BIGINT NOT NULL)"}


#: Version 8: each provider's revision, changed only when rows it held change (:mod:`sisock.g3.revisions`).
_V8_TABLES = {"revisions": "CREATE TABLE IF NOT EXISTS revisions (description VARCHAR(255) NOT NULL, "
                           "value BIGINT NOT NULL)"}


def _first_generation(cur, dialect):
    if cur.one("SELECT COUNT(*) FROM generation")[0] == 0:
        cur.execute("INSERT INTO generation (value) VALUES (1)")


def _fill_max_span(cur, dialect):
    cur.execute("UPDATE description SET max_span = (SELECT MAX(t_end - t_start) FROM feeds "
                "WHERE feeds.description = description.description) WHERE max_span IS NULL")


def _fill_catalogue(cur, dialect):
    if cur.one("SELECT COUNT(*) FROM catalogue")[0] == 0:
        cur.execute(FILL_CATALOGUE.format(where="", value_type="", of_fields=""))


def _index(table: str, name: str, columns: str, unique: bool = False) -> Action:
    def act(cur, dialect):
        if table in tables(cur, dialect) and name not in _indexes(cur, dialect, table):
            cur.execute(f"CREATE {'UNIQUE ' if unique else ''}INDEX {name} ON {table} {columns}")
    return act


def _add_column(table: str, column: str, kind: str) -> Action:
    def act(cur, dialect):
        if column not in _columns(cur, dialect, table):
            cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    return act


def _frames_unique_done(cur, dialect) -> bool:
    return "frames" in tables(cur, dialect) and "frames_offset" in _indexes(cur, dialect, "frames")


def _make_frames_unique(cur, dialect):
    if not _frames_unique_done(cur, dialect) and "frames_unique" not in tables(cur, dialect):
        cur.execute(_V2_TABLES["frames"].replace("frames", "frames_unique", 1))


def _copy_frames(cur, dialect):
    present = tables(cur, dialect)
    if "frames" in present and "frames_unique" in present:
        ignore = "OR IGNORE" if dialect == "sqlite" else "IGNORE"
        cur.execute(f"INSERT {ignore} INTO frames_unique ({_FRAMES_COLUMNS}) SELECT {_FRAMES_COLUMNS} FROM frames")


def _drop_old_frames(cur, dialect):
    present = tables(cur, dialect)
    if "frames" in present and "frames_unique" in present:
        cur.execute("DROP TABLE frames")


def _rename_frames(cur, dialect):
    present = tables(cur, dialect)
    if "frames_unique" in present and "frames" not in present:
        cur.execute("ALTER TABLE frames_unique RENAME TO frames")


def _fill_feed_spans(cur, dialect):
    """Each feed's time range from its frames (feeds indexed before version 4 have none)."""
    cur.execute("UPDATE feeds SET t_start = (SELECT MIN(t_start) FROM frames WHERE frames.feed_id = feeds.id), "
                "t_end = (SELECT MAX(t_end) FROM frames WHERE frames.feed_id = feeds.id) WHERE t_start IS NULL")


def _forget_files_with_duplicate_feeds(cur, dialect):
    """Files whose provider has two feeds rows (never made by this sisock, but possible in an index
    written by anything else) lose their rows and are scanned again, so the unique key can be made."""
    if "feeds_provider" in _indexes(cur, dialect, "feeds"):
        return
    for (file_id,) in cur.all("SELECT file_id FROM feeds GROUP BY file_id, prov_id HAVING COUNT(*) > 1"):
        cur.execute("DELETE FROM frames WHERE feed_id IN (SELECT id FROM feeds WHERE file_id = ?)", (file_id,))
        cur.execute("DELETE FROM fields WHERE feed_id IN (SELECT id FROM feeds WHERE file_id = ?)", (file_id,))
        cur.execute("DELETE FROM feeds WHERE file_id = ?", (file_id,))
        cur.execute("UPDATE files SET size = -1, scanned_to = 0 WHERE id = ?", (file_id,))


#: version -> the actions that make it from the previous version, in order.
STEPS: List[Tuple[int, Sequence[Action]]] = [
    (2, [_drop_seed("fields"), _drop_seed("description"), _drop_seed("feeds"),
         *[_create(name) for name in _V2_TABLES],
         *[_index(*spec) for spec in _V2_INDEXES]]),
    (3, [_add_column("files", "fingerprint", "VARCHAR(100)"),
         # one frame per feed and byte offset: a repeated write can never index a frame twice
         _make_frames_unique, _index("frames_unique", "frames_offset", "(feed_id, byte_offset)", unique=True),
         _copy_frames, _drop_old_frames, _rename_frames, _index("frames", "frames_feed", "(feed_id, t_start)"),
         _forget_files_with_duplicate_feeds, _index("feeds", "feeds_provider", "(file_id, prov_id)", unique=True)]),
    # summary tiers; every file is read once more from the start to make its summaries, and
    # each feed keeps the time range it covers (so long archives are not searched frame by frame)
    (4, [_add_column("files", "summarized", "INTEGER NOT NULL DEFAULT 0"),
         _add_column("feeds", "t_start", "DOUBLE"), _add_column("feeds", "t_end", "DOUBLE"),
         _fill_feed_spans,
         _index("feeds", "feeds_span", "(description, t_end)"), _index("feeds", "feeds_end", "(t_end)"),
         _index("files", "files_summarized", "(summarized)"),
         _create("summaries_file", _V4_TABLES),
         _index("summaries_file", "summaries_file_key", "(feed_id, field)", unique=True),
         _create("summaries", _V4_TABLES),
         _index("summaries", "summaries_key", "(description, field, tier, chunk)", unique=True),
         _create("summaries_dirty", _V4_TABLES),
         _index("summaries_dirty", "summaries_dirty_key", "(description, t_start)")]),
    # per-field finest tiers (a slow field's rows are coarser than 60 s; version 4's are all 60 s),
    # and the field catalogue
    (5, [_add_column("summaries_file", "width", "DOUBLE NOT NULL DEFAULT 60"),
         _add_column("feeds", "summary_width", "DOUBLE"),
         _create("catalogue", _V5_TABLES),
         _index("catalogue", "catalogue_key", "(description, field)", unique=True),
         _fill_catalogue,
         _add_column("description", "max_span", "DOUBLE"), _fill_max_span]),
    # the index's generation (the reader's names and newest times follow it)
    (6, [_create("generation", _V6_TABLES), _first_generation]),
    # the moments of every bucket (summary format 3): files whose rows lack them are read again in the
    # background (sisock.g3.upgrade), and each field's InfluxDB type (G3VectorInt columns are integers)
    (7, [_add_column("files", "moments", "INTEGER NOT NULL DEFAULT 0"),
         _index("files", "files_moments", "(moments)"),
         _add_column("fields", "value_type", "VARCHAR(16)"),
         _add_column("catalogue", "value_type", "VARCHAR(16)")]),
    # each provider's revision (results of finalized slots are kept by it)
    (8, [_create("revisions", _V8_TABLES), _index("revisions", "revisions_key", "(description)", unique=True),
         revisions.fill]),
]
assert STEPS[-1][0] == CURRENT


def _set_version(value: int) -> Action:
    def act(cur, dialect):
        cur.execute("DELETE FROM schema_version")
        cur.execute("INSERT INTO schema_version (version) VALUES (?)", (value,))
    return act


def version(index) -> int:
    """The index's schema version (0: none yet), read without changing anything."""
    return index.run(lambda cur: _stored_version(cur, index.dialect))


def ensure(index, run_action: Optional[Callable[[Action], None]] = None) -> str:
    """Create or upgrade the schema to :data:`CURRENT`; return one line saying what was done.

    ``run_action`` runs one action in its own transaction (tests pass one that stops part way).
    """
    run_action = run_action or (lambda action: index.run(lambda cur: action(cur, index.dialect)))
    found, seed = index.run(lambda cur: (_stored_version(cur, index.dialect), _is_seed(cur, index.dialect)))
    if found > CURRENT:
        raise SchemaError(f"index schema version {found} is newer than this sisock's ({CURRENT})")
    if found == CURRENT:
        return f"schema version {CURRENT} is current"
    for step, actions in STEPS:
        if step <= found:
            continue
        for action in list(actions) + [_set_version(step)]:
            run_action(action)
    if seed:
        return f"upgraded the seed schema to version {CURRENT}; every file will be scanned again"
    if found:
        return f"upgraded schema version {found} to {CURRENT}"
    return f"created schema version {CURRENT}"
