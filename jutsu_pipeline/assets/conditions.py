"""The automation conditions downstream of bars: a symbol's partition is requested when it is missing or an
upstream partition was updated (from any path), never while one of them is missing, in flight or failed, or
a blocking check upstream failed; an unpartitioned page waits for its inputs to settle."""

from __future__ import annotations

from typing import Any

import dagster as dg

from jutsu_pipeline.assets.bars.assets import writer_pool
from jutsu_pipeline.config import JutsuConfig

AC = dg.AutomationCondition


def downstream_condition() -> dg.AutomationCondition:
    """`eager()` over every time window, held back by failed upstream partitions and blocking checks; unlike
    `eager()`, partitions missing at the first evaluation are requested too, once their inputs are valid."""
    trigger = (AC.newly_missing() | AC.any_deps_updated()).since(
        (AC.newly_requested() | AC.newly_updated()).with_label("handled"))
    return (
        trigger
        & ~AC.any_deps_missing()
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
        & ~AC.any_deps_match(AC.execution_failed()).with_label("any_deps_failed")
        & AC.all_deps_blocking_checks_passed()
    ).with_label("downstream of valid bars")


class RequestedThisTick(dg.AutomationCondition):
    """Requested by this evaluation, in whatever run. Dagster's `will_be_requested` counts only an input that
    can share the evaluated asset's run: never a partitioned input of an unpartitioned page. Evaluated in the
    code server (the sensor's `use_user_code_server`), as custom conditions must be."""

    @property
    def name(self) -> str:
        return "requested_this_tick"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        requested = context.request_subsets_by_key.get(context.key)  # inputs are evaluated before their children
        return dg.AutomationResult(context, requested.compute_intersection(context.candidate_subset)
                                   if requested is not None else context.get_empty_subset())


def after_inputs_settle() -> dg.AutomationCondition:
    """An unpartitioned page over partitioned inputs: `eager()` over every time window, also while inputs
    are missing or failed (the page shows them), but not while an input is requested this tick in a run the
    page cannot share; it then follows them once, in the last one's run when it can (the leaderboard's)."""
    elsewhere = (RequestedThisTick() & ~AC.will_be_requested()).with_label("requested this tick, in another run")
    return (AC.eager().without(AC.in_latest_time_window()).without(~AC.any_deps_missing())
            & ~AC.any_deps_match(elsewhere).with_label("no input about to be recomputed in another run"))


def downstream_asset(config: JutsuConfig, *, partitioned: bool = True) -> dict[str, Any]:
    """The `@dg.asset` arguments of every DuckDB table asset downstream of bars: this condition, the
    writer pool, the `duckdb` kind and (partitioned) one run per backfill."""
    single_run = {"backfill_policy": dg.BackfillPolicy.single_run()} if partitioned else {}
    return {**single_run, "automation_condition": downstream_condition(), "pool": writer_pool(config), "kinds": {"duckdb"}}
