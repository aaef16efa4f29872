"""Market-close schedules: one range run per market × timeframe covering every symbol's current partition.

Exchange calendars get a schedule at the regular close + `automation.offset_minutes` in the exchange's
timezone on the calendar's weekdays; holidays skip with a reason and early-close days run at the same
time (their bars are complete by then). 24/7 markets get a UTC daily schedule for the day just ended,
plus an hourly one for intraday timeframes refreshing the current day.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.sync.missing import PartitionRange

TRIGGER_TAG = "jutsu/trigger"
SESSION_TAG = "jutsu/session"
UTC = ZoneInfo("UTC")
CRON_WEEKDAYS = "1234560"  # weekday (Monday = 0) -> cron day of week


def current_range(partitioning: BarsPartitioning, day: dt.date) -> PartitionRange:
    """The partition holding `day` (its month for daily bars, the day otherwise) for every symbol."""
    date_key = (day.replace(day=1) if partitioning.monthly else day).isoformat()
    return PartitionRange(date_key, date_key, tuple(partitioning.symbols))


def close_cron(partitioning: BarsPartitioning, offset_minutes: int) -> str:
    """Cron (exchange timezone) for the regular close + offset on the calendar's trading weekdays."""
    calendar = partitioning.calendar
    close = calendar.regular_close()  # early closes are ignored on purpose
    minutes = close.hour * 60 + close.minute + offset_minutes
    shift, minutes = divmod(minutes, 24 * 60)  # past midnight: the tick falls on the next weekday
    days = sorted(int(CRON_WEEKDAYS[(i + shift) % 7]) for i in calendar.trading_weekdays())
    return f"{minutes % 60} {minutes // 60} * * {_cron_days(days)}"


def _cron_days(days: list[int]) -> str:
    """`1-5` for a contiguous list of cron weekdays, else `0,4,5,6`."""
    if days == list(range(days[0], days[-1] + 1)) and len(days) > 1:
        return f"{days[0]}-{days[-1]}"
    return ",".join(map(str, days))


def _tick_time(context: dg.ScheduleEvaluationContext, tz: ZoneInfo) -> dt.datetime:
    return (context.scheduled_execution_time or dt.datetime.now(dt.timezone.utc)).astimezone(tz)


def _request(partitioning: BarsPartitioning, day: dt.date, run_key: str, trigger: str) -> dg.RunRequest | dg.SkipReason:
    """One range run for the partition holding `day`, or why there is none."""
    cfg = partitioning.config
    if day < cfg.start or (cfg.end is not None and day > cfg.end):
        return dg.SkipReason(f"{day} is outside the market's history ({cfg.start} to {cfg.end or 'open'})")
    partition_range = current_range(partitioning, day)
    if not partitioning.time_partitions_def.has_partition_key(partition_range.first_date):
        return dg.SkipReason(f"date partition {partition_range.first_date} does not exist yet")
    tags = {**partition_range.tags, TRIGGER_TAG: trigger, SESSION_TAG: day.isoformat()}
    return dg.RunRequest(run_key=run_key, tags=tags)


def _default_status(partitioning: BarsPartitioning) -> dg.DefaultScheduleStatus:
    running = partitioning.config.automation.schedule
    return dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED


def market_close_schedule(partitioning: BarsPartitioning, job_name: str) -> dg.ScheduleDefinition:
    """`<market>_bars_<tf>_at_close`: today's session (or month-to-date) of every symbol, once a trading day."""
    offset = partitioning.config.automation.offset_minutes
    tz = partitioning.calendar.timezone
    code = partitioning.config.calendar
    cron = close_cron(partitioning, offset)

    @dg.schedule(
        name=f"{partitioning.market}_bars_{partitioning.timeframe.value}_at_close",
        cron_schedule=cron,
        execution_timezone=str(tz),
        job_name=job_name,
        default_status=_default_status(partitioning),
        description=(f"{offset} min after the regular {code} close ({cron} {tz}): one run syncing the current "
                     f"{'month' if partitioning.monthly else 'session'} of every symbol. Holidays skip."),
    )
    def _at_close(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        day = (_tick_time(context, tz) - dt.timedelta(minutes=offset)).date()  # the session that just closed
        if not partitioning.calendar.is_session(day):
            return dg.SkipReason(f"{day} ({day:%A}) is not a {code} session: no bars to sync")
        return _request(partitioning, day, f"{job_name}:{day}", "market_close")

    return _at_close


def utc_daily_schedule(partitioning: BarsPartitioning, job_name: str) -> dg.ScheduleDefinition:
    """`<market>_bars_<tf>_daily` (24/7 markets): the UTC day that just ended, for every symbol."""
    offset = partitioning.config.automation.offset_minutes
    cron = f"{offset % 60} {offset // 60} * * *"

    @dg.schedule(
        name=f"{partitioning.market}_bars_{partitioning.timeframe.value}_daily",
        cron_schedule=cron,
        execution_timezone="UTC",
        job_name=job_name,
        default_status=_default_status(partitioning),
        description=f"Daily at {cron} UTC: one run syncing the previous UTC day of every symbol.",
    )
    def _daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        day = (_tick_time(context, UTC) - dt.timedelta(minutes=offset)).date() - dt.timedelta(days=1)
        return _request(partitioning, day, f"{job_name}:{day}", "utc_daily")

    return _daily


def utc_hourly_schedule(partitioning: BarsPartitioning, job_name: str) -> dg.ScheduleDefinition:
    """`<market>_bars_<tf>_hourly` (24/7 intraday): today's partition so far, every hour but the daily one's."""
    minute = partitioning.config.automation.offset_minutes % 60
    cron = f"{minute} 1-23 * * *"

    @dg.schedule(
        name=f"{partitioning.market}_bars_{partitioning.timeframe.value}_hourly",
        cron_schedule=cron,
        execution_timezone="UTC",
        job_name=job_name,
        default_status=_default_status(partitioning),
        description=f"Hourly at {cron} UTC: one run refreshing the current UTC day of every symbol.",
    )
    def _hourly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        tick = _tick_time(context, UTC)
        day = (tick - dt.timedelta(minutes=minute, hours=1)).date()  # the day of the last complete hour
        return _request(partitioning, day, f"{job_name}:{tick:%Y-%m-%dT%H}", "utc_hourly")

    return _hourly


def build_schedules(partitioning: BarsPartitioning, job_name: str) -> list[dg.ScheduleDefinition]:
    """The schedules of one market × timeframe (RUNNING unless `automation.schedule: false`)."""
    if not partitioning.calendar.always_open:
        return [market_close_schedule(partitioning, job_name)]
    schedules = [utc_daily_schedule(partitioning, job_name)]
    if not partitioning.monthly:
        schedules.append(utc_hourly_schedule(partitioning, job_name))
    return schedules
