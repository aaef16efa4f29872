"""Dagster's partitions definitions of the bars assets: date × symbol, the date dimension cut like
`BarsPartitioning.date_keys` (a test holds the two equal at every moment)."""

from __future__ import annotations

import datetime as dt
from functools import cache

import dagster as dg

from jutsu_pipeline.partitions import DATE_DIM, KEY_FORMAT, SYMBOL_DIM, BarsPartitioning
from jutsu_pipeline.timeframes import Grain

HISTORY_START = "history_start"  # the market's start/end and grain a bars window was cut (or adopted) with
HISTORY_END = "history_end"
GRAIN = "partition_grain"
PLANNER_KEYS = (HISTORY_START, HISTORY_END, GRAIN)
RUN_TAG_PREFIX = "jutsu/"  # a bars run records the planner keys once, as run tags (`jutsu/history_start`, ...)


def planner_tags(partitioning: BarsPartitioning) -> dict[str, str]:
    """The run tags a bars run records before it stores anything: what every partition of the run was cut with.

    Run tags, not each partition's metadata: a first sync writes 10,500 materialisations, and copying three
    identical entries into each made every event larger to build, serialise and store (bench_events.py)."""
    cfg = partitioning.config
    return {RUN_TAG_PREFIX + HISTORY_START: cfg.start.isoformat(),
            RUN_TAG_PREFIX + HISTORY_END: cfg.end.isoformat() if cfg.end else "",
            RUN_TAG_PREFIX + GRAIN: str(partitioning.grain)}


def bars_asset_key(market: str, timeframe: str) -> dg.AssetKey:
    """`<market>/bars_<tf>`."""
    return dg.AssetKey([market, f"bars_{timeframe}"])


def bars_job_name(partitioning: BarsPartitioning) -> str:
    """The job that syncs (or derives) one market × timeframe, e.g. `sync_us_stocks_bars_1d`."""
    verb = "derive" if partitioning.derived else "sync"
    return f"{verb}_{partitioning.market}_bars_{partitioning.timeframe.value}"


PERIOD_CRONS = {
    Grain.YEAR: "0 0 1 1 *",
    Grain.QUARTER: "0 0 1 1,4,7,10 *",
    Grain.MONTH: "0 0 1 * *",
    Grain.WEEK: "0 0 * * 1",
}


@cache
def time_partitions_def(p: BarsPartitioning) -> dg.TimeWindowPartitionsDefinition:
    cfg, tz, grain, calendar = p.config, str(p.calendar.timezone), p.grain, p.calendar
    end_offset = 0 if cfg.end else 1  # open-ended markets include the in-progress window
    if grain is not Grain.SESSION:
        end = grain.next_period_start(cfg.end).isoformat() if cfg.end else None
        return dg.TimeWindowPartitionsDefinition(
            cron_schedule=PERIOD_CRONS[grain], start=grain.period_start(cfg.start).isoformat(), end=end,
            fmt=KEY_FORMAT, timezone="UTC" if calendar.always_open else tz, end_offset=end_offset,
        )
    if calendar.always_open:
        end = (cfg.end + dt.timedelta(days=1)).isoformat() if cfg.end else None
        return dg.DailyPartitionsDefinition(start_date=cfg.start.isoformat(), end_date=end, timezone="UTC",
                                            end_offset=end_offset)
    # One partition per session: weekdays minus the exchange's closures. A window runs until the
    # next session starts, so the partitions end at the first session after `end`.
    end = calendar.next_session(cfg.end).isoformat() if cfg.end else None
    first = calendar.sessions(cfg.start, cfg.start + dt.timedelta(days=15))[0]
    closed = [dt.datetime.combine(day, dt.time()) for day in calendar.closed_weekdays()]
    return dg.TimeWindowPartitionsDefinition(cron_schedule="0 0 * * 1-5", start=first.isoformat(), end=end,
                                             fmt=KEY_FORMAT, timezone=tz, end_offset=end_offset, exclusions=closed)


@cache
def bars_partitions_def(p: BarsPartitioning) -> dg.MultiPartitionsDefinition:
    """The bars asset's partitions: the date dimension, then the market's symbols."""
    return dg.MultiPartitionsDefinition({
        DATE_DIM: time_partitions_def(p),
        SYMBOL_DIM: dg.StaticPartitionsDefinition(list(p.symbols)),
    })
