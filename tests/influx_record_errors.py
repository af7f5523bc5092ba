"""Regenerate tests/data/influxql_parse_errors.txt from a real InfluxDB 1.x: run with the venv's python.

Every query of CORPUS is sent to a fresh influxd (tests/influx_support.py, database "db" created) as
POST /query?db=db; the file records, per query, InfluxDB's status and error text: 400 with the top-level error
for a query that does not parse, 200 with the first statement's error for one its compiler refuses.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.influx_support import Influxd  # noqa: E402

DATA = Path(__file__).parent / "data" / "influxql_parse_errors.txt"

# Queries InfluxDB refuses, one a line ("\n" inside a query is written as the two characters \n).
CORPUS = r"""
SELECT x
SELECT
SELECT 'abc
SELECT x FROM
SELECT * FROM /(/
SELECT * FROM /abc
SELECT * FROM m WHERE
SELECT * FROM m WHERE a =~ 'x'
SELECT * FROM m GROUP BY
SELECT * FROM m GROUP time(1m)
SELECT * FROM m LIMIT x
SELECT * FROM m ORDER BY foo
SELECT * FROM m ORDER BY TIME
SELECT mean(x) FROM m fill(x)
SELECT mean(x) FROM m fill(1, 2)
SELECT mean(x) FROM m tz('Nowhere/City')
SELECT mean(x) FROM m tz(1)
SELECT a = 1 FROM m
SELECT a FROM m WHERE time > now() - 1x
SELECT a FROM m WHERE time > 1m1
SELECT a FROM a.b.c.d
SELECT a FROM m; SELECT
SELECT a FROM m SELECT
SHOW
SHOW TAG
SHOW TAG VALUES FROM m
SHOW TAG VALUES WITH KEY
SHOW TAG VALUES WITH KEY =
SHOW TAG KEY
SHOW FIELD KEY EXACT
SHOW MEASUREMENTS WITH
SHOW MEASUREMENTS WITH MEASUREMENT
SHOW MEASUREMENTS LIMIT -1
SHOW RETENTION POLICIES on
DROP
DROP MEASUREMENT
CREATE DATABASE
CREATE DATABASE x WITH
GRANT
GRANT ALL TO
REVOKE READ FROM u
KILL QUERY x
DELETE
DELETE FROM db.rp.m
SELECT "a
SELECT a::foo FROM m
SELECT *::x FROM m
SELECT DISTINCT
SELECT DISTINCT 1
SELECT mean(x FROM m
SELECT x FROM m WHERE t = $x
SELECT x FROM m WHERE t = $
SELECT 99999999999999999999999 FROM m
SELECT -18446744073709551615 FROM m
SELECT x FROM m WHERE a = 'b\q'
SELECT x FROM m WHERE a = "b\q"
SELECT x FROM m LIMIT 1 OFFSET
SELECT x FROM m SLIMIT
FOO
é
SELECT x FROM m /* unterminated
SELECT x, FROM m
SELECT x FROM m WHERE (a = 1
SELECT x FROM m WHERE a = 1)
SELECT count(x) FROM m GROUP BY time(1m) fill(linear) LIMIT 1 SOFFSET 2 SLIMIT 3
SELECT x FROM (SELECT y FROM m
SELECT x FROM m WHERE x !~ 'a'
SELECT x FROM m WHERE x =~ /a
SELECT x FROM m WHERE x =~ /a\/
  SELECT x
SELECT x FROM m INTO n
SELECT x INTO FROM m
SELECT x INTO a.b.c.d FROM m
SELECT x INTO a.:FOO FROM m
EXPLAIN
EXPLAIN ANALYZE SHOW
CREATE RETENTION POLICY rp ON db DURATION 1x REPLICATION 1
CREATE RETENTION POLICY rp ON db DURATION 1d REPLICATION 0
CREATE RETENTION POLICY rp ON db DURATION 1d REPLICATION 1 SHARD DURATION INF
ALTER RETENTION POLICY rp ON db
ALTER RETENTION POLICY rp ON db DEFAULT DEFAULT
SET PASSWORD FOR u 'x'
CREATE USER u WITH PASSWORD
CREATE USER u WITH PASSWORD 'x' WITH
CREATE CONTINUOUS QUERY cq ON db BEGIN SELECT mean(x) INTO y FROM m END
CREATE CONTINUOUS QUERY cq ON db RESAMPLE BEGIN SELECT mean(x) INTO y FROM m END
CREATE SUBSCRIPTION s ON db DESTINATIONS ALL 'x'
SELECT x FROM m WHERE time > '2024-01-01' AND
SELECT 1.5.5 FROM m
SELECT .x FROM m
SELECT x FROM m GROUP BY time(1m) fill
SELECT x FROM m GROUP BY time(1m) tz
SELECT x FROM m WHERE a = 1 b
SELECT x AS FROM m
SELECT x FROM m ORDER BY time DESC, time ASC
SELECT x FROM m ORDER BY
SHOW SERIES EXACT CARDINALITY ON
SHOW TAG VALUES CARDINALITY WITH KEY =~ x
SHOW STATS FOR x
SHOW GRANTS
SELECT x FROM m WHERE time > now() - 9999999999999999999h
SELECT x FROM m WHERE time > 106752d
SELECT x FROM m WHERE a = !b
SELECT x FROM m WHERE a ! b
SELECT x FROM m WHERE a = 'b' AND time > -
SELECT "" FROM m WHERE
SELECT x FROM m WHERE x =~ /[a/
SELECT x FROM m WHERE x =~ /a**/
SELECT x FROM m WHERE x =~ /*a/
SELECT x FROM m WHERE x =~ /(?=a)/
SELECT x FROM m WHERE x =~ /a)/
SELECT x FROM m WHERE x =~ /\1/
SELECT x FROM m WHERE x =~ /a\/
SELECT x FROM m WHERE x =~ /a\/\nb/
SELECT x\nFROM m\nWHERE
SELECT x FROM m\r\nWHERE y =
SELECT\tx\tFROM
SELECT x FROM m;;SELECT y FROM
SELECT x FROM m WHERE time > now() - 1h GROUP BY time(1m) fill(nul)
SELECT mean("value") FROM "cpu" WHERE $timeFilter GROUP BY time($__interval) fill(null)
SELECT mean(value) FROM cpu WHERE time >= 1733500000000ms and time <= 1733586400000ms GROUP BY time(1m) fill(null
SHOW TAG VALUES FROM "m" WITH KEY = feed WHERE
SHOW TAG VALUES FROM "m" WITH KEY IN (a, b
SHOW TAG VALUES WITH KEY IN a
SHOW TAG VALUES WITH KEY ! a
SHOW FIELD KEYS ON
SHOW FIELD KEYS FROM
SHOW SERIES FROM m WHERE
SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)temp LIMIT 100
SHOW MEASUREMENTS WITH MEASUREMENT ! x
SELECT non_negative_derivative(mean(x), 1s FROM m
SELECT percentile(x, ) FROM m
SELECT x FROM m WHERE "feed"::tag = 'temperatures' AND "x"::float > 1 OR
SELECT x::tag::field FROM m
SELECT x FROM m WHERE time >= '2024-01-01T00:00:00Z' AND time <= now() - 1y
SELECT x FROM m WHERE time > 1733500000000000000000ns
SELECT x FROM m GROUP BY time(1m),
SELECT x FROM "db"."rp"."m"."n"
SELECT x FROM "a".
SELECT x FROM a..
SELECT * FROM m WHERE x = 1 x
SELECT * FROM m LIMIT 10 LIMIT 10
SELECT * FROM m OFFSET 1 LIMIT 10
SELECT * FROM m tz('Europe/Paris') LIMIT 1
SELECT 1.5e3 FROM m
SELECT x FROM m WHERE x = 0x10
SELECT x FROM m WHERE a = 'caf\u00e9
SELECT x FROM m WHERE a = 'x' ||| b
SELECT x FROM m WHERE a = @b
SELECT count(DISTINCT) FROM m
SELECT mean(x) FROM m GROUP BY time(1m) ORDER BY time DESC LIMIT
DROP SERIES FROM db.rp.m
DROP SERIES
DROP SHARD x
DROP CONTINUOUS QUERY cq
DROP SUBSCRIPTION s ON db
DROP RETENTION POLICY rp
CREATE RETENTION POLICY rp ON db DURATION 1d
ALTER RETENTION POLICY rp ON db REPLICATION 1 REPLICATION 2
GRANT READ ON db
REVOKE ALL PRIVILEGES ON db
REVOKE ALL x
SHOW USERS x
SHOW DATABASES x
SHOW QUERIES x
KILL QUERY 1 ON
SELECT /* a comment where a regex may start */ "value" FROM "m"
SELECT mean(x) FROM m GROUP BY time(1m) FILL(NULL)
SELECT x FROM m WHERE time > now() - 4µs
"""

# Queries InfluxDB parses but its query compiler refuses (a per-statement error, HTTP 200).
COMPILE_CORPUS = r"""
SELECT x FROM m GROUP BY time(1m)
SELECT mean(x), y FROM m
SELECT max(x), min(x), y FROM m
SELECT foo(x) FROM m
SELECT mean(x, y) FROM m
SELECT mean() FROM m
SELECT percentile(x) FROM m
SELECT percentile(x, 'a') FROM m
SELECT derivative(x, 'a') FROM m
SELECT derivative(x, -1s) FROM m
SELECT derivative(mean(x)) FROM m
SELECT derivative(x) FROM m GROUP BY time(1m)
SELECT derivative(x, 1s, 2) FROM m
SELECT non_negative_derivative(max(x), 1s) FROM m
SELECT difference(x, 1) FROM m
SELECT difference(mean(x)) FROM m
SELECT cumulative_sum(mean(x)) FROM m
SELECT moving_average(x) FROM m
SELECT moving_average(x, 1) FROM m
SELECT moving_average(x, 1.5) FROM m
SELECT moving_average(mean(x), 2) FROM m
SELECT elapsed(x, 'a') FROM m
SELECT elapsed(mean(x)) FROM m
SELECT integral(x, 'a') FROM m
SELECT integral(x, 1s, 2) FROM m
SELECT integral(mean(x)) FROM m
SELECT mean(*) + 1 FROM m
SELECT * + 1 FROM m
SELECT /x/ + 1 FROM m
SELECT 1 + 1 FROM m
SELECT 1 FROM m
SELECT 'a' FROM m
SELECT time FROM m
SELECT x FROM m fill(none)
SELECT x FROM m fill(linear)
SELECT distinct(x), y FROM m
SELECT distinct(x), mean(y) FROM m
SELECT distinct(x, y) FROM m
SELECT distinct() FROM m
SELECT distinct(1) FROM m
SELECT count(distinct(x, y)) FROM m
SELECT top(x) FROM m
SELECT top(x, 'a') FROM m
SELECT top(x, 0) FROM m
SELECT top(x, 5) FROM m LIMIT 2
SELECT top(1, 5) FROM m
SELECT top(x, 1, 5) FROM m
SELECT top(x, 5), mean(y) FROM m
SELECT top(x, 5), bottom(y, 5) FROM m
SELECT sample(x, 0) FROM m
SELECT sample(x, 'a') FROM m
SELECT mean(x) FROM m GROUP BY time
SELECT mean(x) FROM m GROUP BY mean(x)
SELECT mean(x) FROM m GROUP BY time()
SELECT mean(x) FROM m GROUP BY time(1)
SELECT mean(x) FROM m GROUP BY time(1m), time(2m)
SELECT mean(x) FROM m GROUP BY time(1m, foo())
SELECT mean(x) FROM m GROUP BY time(1m, now(1))
SELECT mean(x) FROM m GROUP BY time(1m, 'a')
SELECT mean(x) FROM m GROUP BY time(1m, 1)
SELECT mean(x) FROM m GROUP BY 'a'
SELECT mean(x) FROM m GROUP BY time(1m, 2m, 3m)
SELECT x FROM m WHERE mean(x) > 1
SELECT x FROM m WHERE abs(x, 1) > 1
SELECT abs(x, 2) FROM m
SELECT log(x) FROM m
SELECT mean(x) * y FROM m
SELECT x, y FROM m GROUP BY time(1m) fill(none)
SELECT median(x), x FROM m
SELECT first(x), last(x), tag FROM m
SELECT DISTINCT x, y FROM m
"""


def corpus(text: str) -> List[str]:
    """The queries of a corpus block, ``\\n`` and ``\\t`` and ``\\r`` read as those characters."""
    lines = [line for line in text.split("\n") if line.strip()]
    return [line.replace("\\n", "\n").replace("\\t", "\t").replace("\\r", "\r") for line in lines]


def record(db: Influxd, queries: List[str]) -> List[Tuple[str, int, str]]:
    """(query, status, error) as influxd answers each query."""
    out = []
    for q in queries:
        status, body = db.query(q, db="db", method="POST")
        if status == 200:
            error = next((r["error"] for r in body.get("results", []) if "error" in r), "")
        else:
            error = body.get("error", "")
        out.append((q, status, error))
    return out


def main() -> None:
    """Write the data file from a fresh influxd."""
    with Influxd() as db:
        db.query("CREATE DATABASE db", method="POST")
        version = db.version()
        rows = record(db, corpus(CORPUS) + corpus(COMPILE_CORPUS))
    header = [
        f"# InfluxQL error texts recorded from a real influxd ({version}) by tests/influx_record_errors.py;",
        "# regenerate with: .venv/bin/python tests/influx_record_errors.py",
        "# One JSON array a line: [query, HTTP status (400: parse error, 200: per-statement error), error text].",
    ]
    DATA.write_text("\n".join(header + [json.dumps(list(r), ensure_ascii=False) for r in rows]) + "\n")
    print(f"{len(rows)} queries recorded in {DATA}")


if __name__ == "__main__":
    main()
