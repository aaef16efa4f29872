"""Derived timeframes benchmark: 5m, 1h and 1d from 50 symbols × 1 year of stored 1m bars.

Ours: `derive_partitions` for every (session, symbol) partition of each timeframe (session-anchored
buckets, incomplete flags, delete + insert into `bars` in one transaction). Baselines, measured in the
same run over the same rows: one hand-written `GROUP BY time_bucket` query per timeframe (no session
anchoring across DST, no completeness flag) writing (a) into a table shaped like `bars`, with its
primary key (the same destination as ours: the target compares with this), and (b) into a plain table
(the query alone: storing ~1M rows under a primary key costs about as much as the query).

Run: .venv/bin/python benchmarks/bench_derive.py      (target: ours <= 1.5 × baseline)
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import duckdb  # noqa: E402
from _util import row  # noqa: E402

from jutsu_pipeline.config import parse_config  # noqa: E402
from jutsu_pipeline.derive import derive_partitions  # noqa: E402
from jutsu_pipeline.partitions import BarsPartitioning  # noqa: E402
from jutsu_pipeline.quality.grid import session_table  # noqa: E402
from jutsu_pipeline.storage.ddl import ensure_schema  # noqa: E402
from jutsu_pipeline.timeframes import Timeframe  # noqa: E402

SYMBOLS = [f"S{i:03d}" for i in range(50)]
START, END = dt.date(2012, 1, 3), dt.date(2012, 12, 31)

# Synthetic 1m bars for every minute of every XNYS session (early closes included), per symbol.
INSERT_MINUTES = """
INSERT INTO bars (symbol, timeframe, ts, open, high, low, close, volume, adj_close, source, ingested_at)
SELECT s.symbol, '1m', m.ts, p, p * 1.001, p * 0.999, p * 1.0005, 100 + (hash(s.symbol, m.ts) % 900), NULL, 'bench', now()
FROM (SELECT unnest($symbols) AS symbol) AS s
CROSS JOIN (
    SELECT unnest(range(open, close, INTERVAL 1 MINUTE)) AS ts FROM sessions
) AS m,
LATERAL (SELECT 100 + (hash(s.symbol, m.ts) % 1000) / 100.0 AS p)
ORDER BY s.symbol, m.ts
"""

BUCKETS = {
    "5m": "time_bucket(INTERVAL 5 MINUTE, ts)",
    "1h": "time_bucket(INTERVAL 1 HOUR, ts, TIMESTAMPTZ '2012-01-03 14:30:00+00')",
    # The UTC day by epoch arithmetic: time_bucket(INTERVAL 1 DAY, <TIMESTAMPTZ>) goes through ICU time
    # zones and took ~8 s here, a baseline slower than it need be.
    "1d": "make_timestamp(epoch_us(ts) // 86400000000 * 86400000000)",
}
QUERY = ("SELECT symbol, {bucket} AS ts, arg_min(open, ts) AS open, max(high) AS high, min(low) AS low, "
         "arg_max(close, ts) AS close, sum(volume) AS volume FROM bars WHERE timeframe = '1m' GROUP BY ALL")
BASELINE_KEYED = ("INSERT INTO keyed SELECT symbol, '{timeframe}', ts, open, high, low, close, volume, NULL, 'baseline', "
                  "now(), false FROM ({query})")
BASELINE_PLAIN = "CREATE OR REPLACE TABLE plain AS {query}"


def main() -> int:
    config = parse_config({"markets": {"bench": {
        "provider": "sample", "calendar": "XNYS", "timeframes": ["1m"], "derive": ["5m", "1h", "1d"],
        "start": START.isoformat(), "end": END.isoformat(), "symbols": SYMBOLS}}})
    market = config.markets["bench"]
    with tempfile.TemporaryDirectory() as folder:
        con = duckdb.connect(str(Path(folder) / "bench.duckdb"))
        con.execute("SET TimeZone = 'UTC'")
        ensure_schema(con)
        base = BarsPartitioning("bench", Timeframe.M1, market)
        sessions = session_table(base.calendar, START, END)
        con.register("sessions", sessions.to_arrow())
        started = time.perf_counter()
        con.execute(INSERT_MINUTES, {"symbols": SYMBOLS})
        con.unregister("sessions")
        minutes = con.execute("SELECT count(*) FROM bars").fetchone()[0]
        print(f"derive: {len(SYMBOLS)} symbols × {sessions.height} sessions = {minutes:,} 1m bars "
              f"(stored in {time.perf_counter() - started:.1f} s)")
        con.execute("CREATE TABLE keyed AS FROM bars LIMIT 0")
        con.execute("ALTER TABLE keyed ADD PRIMARY KEY (symbol, timeframe, ts)")
        con.execute(BASELINE_PLAIN.format(query=QUERY.format(bucket=BUCKETS["5m"])))  # warm-up: nobody reads cold
        totals = {"ours": 0.0, "keyed": 0.0, "plain": 0.0}
        for timeframe in ("5m", "1h", "1d"):
            p = BarsPartitioning("bench", Timeframe(timeframe), market, base=Timeframe.M1)
            keys = p.all_partition_keys()
            query = QUERY.format(bucket=BUCKETS[timeframe])
            started = time.perf_counter()
            outcome = derive_partitions(con, p, Timeframe.M1, keys)
            ours = time.perf_counter() - started
            started = time.perf_counter()
            con.execute(BASELINE_KEYED.format(timeframe=timeframe, query=query))
            keyed = time.perf_counter() - started
            started = time.perf_counter()
            con.execute(BASELINE_PLAIN.format(query=query))
            plain = time.perf_counter() - started
            for name, value in (("ours", ours), ("keyed", keyed), ("plain", plain)):
                totals[name] += value
            row(f"{timeframe}: ours ({outcome.bars:,} bars, {len(keys):,} partitions)", ours, "s")
            row(f"{timeframe}: baseline into a keyed table like bars", keyed, "s", f"ratio {ours / keyed:.2f}")
            row(f"{timeframe}: baseline into a plain table", plain, "s", f"ratio {ours / plain:.2f}")
        row("5m + 1h + 1d: ours / baseline into a keyed table", totals["ours"] / totals["keyed"], "x", "target <= 1.5")
        row("5m + 1h + 1d: ours / baseline into a plain table", totals["ours"] / totals["plain"], "x")
        con.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
