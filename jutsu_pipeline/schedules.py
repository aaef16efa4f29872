"""Schedules requesting the planner's runs for the recent windows (stored ones: a tail refresh): at the
regular close + `automation.offset_minutes` on the calendar's weekdays (holidays skip; early closes run at
the same time), daily in UTC for 24/7 markets, and every `automation.refresh_minutes` for intraday bars.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from jutsu_pipeline.calendars import SessionCalendar
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.sync.planner import plan_sync

TRIGGER_TAG = "jutsu/trigger"
SESSION_TAG = "jutsu/session"
UTC = ZoneInfo("UTC")
CRON_WEEKDAYS = "1234560"  # weekday (Monday = 0) -> cron day of week


def close_cron(partitioning: BarsPartitioning, offset_minutes: int) -> str:
    """Cron (exchange timezone) for the regular close + offset on the calendar's trading weekdays."""
    calendar = partitioning.calendar
    close = calendar.regular_close()  # early closes are ignored on purpose
    minutes = close.hour * 60 + close.minute + offset_minutes
    shift, minutes = divmod(minutes, 24 * 60)  # past midnight: the tick falls on the next weekday
    return f"{minutes % 60} {minutes // 60} * * {_cron_days(calendar, shift)}"


def _cron_days(calendar: SessionCalendar, shift: int = 0) -> str:
    """The calendar's trading weekdays (`shift` days later) as cron days: `1-5` when contiguous, else `0,4,5,6`."""
    days = sorted(int(CRON_WEEKDAYS[(i + shift) % 7]) for i in calendar.trading_weekdays())
    if days == list(range(days[0], days[-1] + 1)) and len(days) > 1:
        return f"{days[0]}-{days[-1]}"
    return ",".join(map(str, days))


def _tick_time(context: dg.ScheduleEvaluationContext, tz: ZoneInfo) -> dt.datetime:
    return (context.scheduled_execution_time or dt.datetime.now(dt.timezone.utc)).astimezone(tz)


def recent_requests(context: dg.ScheduleEvaluationContext, partitioning: BarsPartitioning, job_name: str,
                    now: dt.datetime, run_key: str, trigger: str, day: dt.date) -> list[dg.RunRequest] | dg.SkipReason:
    """The planner's runs for the recent windows (stored ones: a tail refresh), skipping runs in flight."""
    from jutsu_pipeline.assets.bars.assets import bars_asset_key
    from jutsu_pipeline.status import partition_status

    cfg = partitioning.config
    if day < cfg.start or (cfg.end is not None and day > cfg.end):
        return dg.SkipReason(f"{day} is outside the market's history ({cfg.start} to {cfg.end or 'open'})")
    key = bars_asset_key(partitioning.market, partitioning.timeframe.value)
    status = partition_status(context.instance, key, partitioning, job_name)
    plan = plan_sync(partitioning, status, now.astimezone(dt.timezone.utc), only_recent=True)
    if not plan.ranges:
        return dg.SkipReason(f"nothing to sync at {now:%Y-%m-%d %H:%M %Z}: {plan.summary()}")
    tags = {TRIGGER_TAG: trigger, SESSION_TAG: day.isoformat()}
    return [dg.RunRequest(run_key=f"{run_key}:{i}" if i else run_key, tags={**r.tags, **tags})
            for i, r in enumerate(plan.ranges)]


def _schedule(partitioning: BarsPartitioning, job_name: str, suffix: str, cron: str, tz: ZoneInfo | str,
              description: str):  # noqa: ANN202 - Dagster's decorator
    """`@dg.schedule` of `<market>_bars_<tf>_<suffix>`, RUNNING unless `automation.schedule: false`."""
    running = partitioning.config.automation.schedule
    return dg.schedule(name=f"{partitioning.market}_bars_{partitioning.timeframe.value}_{suffix}", cron_schedule=cron,
                       execution_timezone=str(tz), job_name=job_name, description=description,
                       default_status=dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED)


def close_schedule(partitioning: BarsPartitioning, job_name: str) -> dg.ScheduleDefinition:
    """`<market>_bars_<tf>_at_close`: the window holding today's session for every symbol, once a trading day;
    for a 24/7 market `<market>_bars_<tf>_daily`: the window holding the UTC day that just ended."""
    offset = partitioning.config.automation.offset_minutes
    calendar, code = partitioning.calendar, partitioning.config.calendar
    if calendar.always_open:
        suffix, trigger, tz, cron = "daily", "utc_daily", UTC, f"{offset % 60} {offset // 60} * * *"
        description = f"Daily at {cron} UTC: one run syncing the windows of the previous UTC day for every symbol."
    else:
        suffix, trigger, tz, cron = "at_close", "market_close", calendar.timezone, close_cron(partitioning, offset)
        description = (f"{offset} min after the regular {code} close ({cron} {tz}): one run refreshing the current "
                       f"{partitioning.grain} of every symbol (tail only when stored). Holidays skip.")

    @_schedule(partitioning, job_name, suffix, cron, tz, description)
    def _close(context: dg.ScheduleEvaluationContext):  # noqa: ANN202
        tick = _tick_time(context, tz)
        day = (tick - dt.timedelta(minutes=offset)).date()  # the session that just closed
        if calendar.always_open:
            day -= dt.timedelta(days=1)  # the UTC day before the tick's
        elif not calendar.is_session(day):
            return dg.SkipReason(f"{day} ({day:%A}) is not a {code} session: no bars to sync")
        return recent_requests(context, partitioning, job_name, tick, f"{job_name}:{day}", trigger, day)

    return _close


def refresh_cron(partitioning: BarsPartitioning, minutes: int) -> str:
    """Every `minutes` around the clock (24/7, UTC) or in the hours of the regular session (exchange tz)."""
    calendar = partitioning.calendar
    step = f"*/{minutes}" if minutes < 60 else "0"
    if calendar.always_open:
        return f"{step} * * * *"
    return f"{step} {calendar.regular_open().hour}-{calendar.regular_close().hour} * * {_cron_days(calendar)}"


def refresh_schedule(partitioning: BarsPartitioning, job_name: str) -> dg.ScheduleDefinition:
    """`<market>_bars_<tf>_refresh` (intraday): the in-progress window's tail, every N minutes in session."""
    minutes = partitioning.config.refresh_every()
    tz = partitioning.calendar.timezone
    cron = refresh_cron(partitioning, minutes)

    @_schedule(partitioning, job_name, "refresh", cron, tz,
               f"Every {minutes} min ({cron} {tz}) while the market trades: one run fetching only the bars "
               "after each symbol's last stored final bar (automation.refresh_minutes).")
    def _refresh(context: dg.ScheduleEvaluationContext):  # noqa: ANN202
        tick = _tick_time(context, tz)
        if not partitioning.calendar.always_open:
            day = tick.date()
            if not partitioning.calendar.is_session(day):
                return dg.SkipReason(f"{day} ({day:%A}) is not a {partitioning.config.calendar} session")
            open_, close = partitioning.calendar.session_bounds(day)
            if not open_ <= tick < close + dt.timedelta(minutes=minutes):
                return dg.SkipReason(f"{tick:%H:%M %Z} is outside the session ({open_:%H:%M}-{close:%H:%M} UTC)")
        return recent_requests(context, partitioning, job_name, tick, f"{job_name}:{tick:%Y-%m-%dT%H:%M}",
                               "refresh", tick.date())

    return _refresh


def build_schedules(partitioning: BarsPartitioning, job_name: str) -> list[dg.ScheduleDefinition]:
    """The schedules of one market × timeframe (RUNNING unless `automation.schedule: false`)."""
    schedules = [close_schedule(partitioning, job_name)]
    if partitioning.timeframe.is_intraday and partitioning.config.refresh_every():
        schedules.append(refresh_schedule(partitioning, job_name))
    return schedules
