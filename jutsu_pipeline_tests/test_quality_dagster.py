"""Checks in real in-process Dagster runs: single-run ranges, blocking downstream, profiles in the sync."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
import polars as pl
import pytest

from jutsu_pipeline.assets.bars.assets import build_bars_asset
from jutsu_pipeline.assets.bars.checks import build_bars_checks
from jutsu_pipeline.assets.partitions import bars_partitions_def
from jutsu_pipeline.config import JutsuConfig, load_config
from jutsu_pipeline.providers.base import FetchRequest
from jutsu_pipeline.providers.sample import SampleProvider
from jutsu_pipeline.resources import JutsuDuckDBResource, MarketDataResource
from jutsu_pipeline.sync.planner import RANGE_END_TAG, RANGE_START_TAG
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, query, write_config
from jutsu_pipeline_tests.helpers import partitioning, run_bars, step_error

BARS_KEY = dg.AssetKey(["us_stocks", "bars_1d"])
UTC = dt.timezone.utc


def _run_with_checks(config: JutsuConfig, instance: dg.DagsterInstance, start: str, end: str,
                     market_data: MarketDataResource | None = None) -> tuple[dg.ExecuteInProcessResult, list[str]]:
    """Materialise bars start...end in one run with its checks and a downstream asset; what downstream got."""
    p = partitioning(config)
    ran: list[str] = []

    @dg.asset(key=["us_stocks", "downstream"], deps=[BARS_KEY], partitions_def=bars_partitions_def(p),
              backfill_policy=dg.BackfillPolicy.single_run())
    def downstream(context) -> None:  # noqa: ANN001 - string annotations are not allowed here
        ran.extend(context.partition_keys)

    result = dg.materialize(
        [build_bars_asset(config, p), *build_bars_checks(config, p), downstream],
        instance=instance,
        resources={"duckdb": JutsuDuckDBResource(database=str(config.database), lock_timeout_seconds=5),
                   "market_data": market_data or MarketDataResource()},
        tags={RANGE_START_TAG: start, RANGE_END_TAG: end},
        raise_on_error=False,
    )
    return result, ran


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.mark.slow
def test_whole_sample_history_in_one_range_run(sample_config, instance) -> None:
    result, ran = _run_with_checks(sample_config, instance, "2000-03-01|AAPL", "2013-03-01|MSFT")
    assert result.success and len(ran) == 785  # warnings do not stop downstream
    checks = _evaluations(result)
    assert set(checks) == {"ohlcv_schema", "no_duplicates", "calendar_complete", "price_anomalies"}  # has an end
    for name in ("ohlcv_schema", "no_duplicates", "calendar_complete"):
        assert checks[name].passed, checks[name].metadata
        assert checks[name].metadata["rows_checked"].value == 12154
    # FB's partitions before its listing (2012-05-18) are valid-empty, not missing sessions.
    assert checks["calendar_complete"].metadata["partitions_checked"].value == 785
    anomalies = checks["price_anomalies"]
    assert not anomalies.passed and anomalies.severity == dg.AssetCheckSeverity.WARN
    assert anomalies.metadata["rule_price_jump"].value == 1
    assert anomalies.metadata["per_symbol"].value == {"AAPL": {"price_jump": 1}}
    assert "| AAPL | 1 | price_jump: 1 | 2000-09-29 |" in anomalies.metadata["worst_offenders"].value
    actions = anomalies.metadata["corporate_action_jumps"].value
    assert "| AAPL | 2000-06-21 |" in actions and "| AAPL | 2005-02-28 |" in actions
    assert actions.count("2:1 split") == 3 and "2000-09-29" not in actions  # the third: MSFT 2003-02-18


def test_a_failing_blocking_check_stops_downstream_in_the_same_run(sample_config, instance) -> None:
    first, ran = _run_with_checks(sample_config, instance, "2012-01-01|IBM", "2012-06-01|IBM")
    assert first.success and len(ran) == 6
    with duckdb.connect(str(sample_config.database)) as con:  # bad data already stored, outside the next run
        con.execute("UPDATE bars SET close = 'NaN'::DOUBLE WHERE symbol = 'IBM' AND ts = '2012-03-05 00:00:00+00'")
    result, ran = _run_with_checks(sample_config, instance, "2012-07-01|IBM", "2012-08-01|IBM")
    assert not result.success and ran == []
    schema = _evaluations(result)["ohlcv_schema"]
    assert not schema.passed and schema.severity == dg.AssetCheckSeverity.ERROR
    assert schema.metadata["rule_ohlcv_not_null"].value == 1
    assert "2012-03-05" in schema.metadata["sample_rows"].value
    assert "2012-07-01|IBM" in instance.get_materialized_partitions(BARS_KEY)  # the bars themselves landed
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert "us_stocks__bars_1d" in started and "us_stocks__downstream" not in started
    assert {m.asset_key for m in result.asset_materializations_for_node("us_stocks__bars_1d")} == {BARS_KEY}


class _CorruptIBM(SampleProvider):
    """IBM's high is below its low on 2000-04-03 (an invariant violation)."""

    def fetch(self, request: FetchRequest) -> pl.DataFrame:
        frame = super().fetch(request)
        if request.symbol != "IBM":
            return frame
        bad = pl.col("ts") == dt.datetime(2000, 4, 3, tzinfo=UTC)
        return frame.with_columns(pl.when(bad).then(pl.col("low") - 1).otherwise(pl.col("high")).alias("high"))


class _CorruptMarketData(MarketDataResource):
    def provider_for(self, config, market, timezone):  # noqa: ANN001, ANN201
        return _CorruptIBM()


def test_lenient_stores_invariant_violations_and_the_check_warns(tmp_path, instance) -> None:
    config = load_config(write_config(tmp_path, {"us_stocks": {**SAMPLE_MARKET, "quality": {"profile": "lenient"}}}))
    result, ran = _run_with_checks(config, instance, "2000-04-01|IBM", "2000-04-01|IBM", _CorruptMarketData())
    assert result.success and ran == ["2000-04-01|IBM"]
    assert query(config, "SELECT count(*) FROM bars WHERE high < low") == [(1,)]
    schema = _evaluations(result)["ohlcv_schema"]
    assert not schema.passed and schema.severity == dg.AssetCheckSeverity.WARN
    assert schema.metadata["per_symbol"].value == {"IBM": {"high_ge_low": 1, "high_ge_open_close": 1}}


def test_standard_blocks_the_same_write_and_strict_blocks_the_real_crash(tmp_path, instance) -> None:
    standard = load_config(write_config(tmp_path, {"us_stocks": SAMPLE_MARKET}))
    result = run_bars(standard, instance, key="2000-04-01|IBM", market_data=_CorruptMarketData())
    assert not result.success and "high_ge_low" in step_error(result)
    strict = load_config(write_config(tmp_path, {"us_stocks": {**SAMPLE_MARKET, "quality": {"profile": "strict"}}},
                                      duckdb_path="strict.duckdb"))
    result = run_bars(strict, instance, key="2000-09-01|AAPL")
    assert not result.success
    error = step_error(result)
    assert "2000-09-01|AAPL" in error and "price_jump" in error
    # The message says which setting lets a real jump through, and where it lives.
    assert "price_jump blocks only under quality.profile strict: if these bars are real, raise the market's " \
           "quality.max_open_gap above the jump (default 0.25 = 25 %) or set the market's quality.profile to " \
           "standard" in error and f"markets.us_stocks in {tmp_path / 'jutsu.yaml'}" in error, error
    relaxed = {**SAMPLE_MARKET, "quality": {"profile": "strict", "max_open_gap": 0.6}}  # AAPL opened 47 % lower
    relaxed_config = load_config(write_config(tmp_path, {"us_stocks": relaxed}, duckdb_path="relaxed.duckdb"))
    assert run_bars(relaxed_config, instance, key="2000-09-01|AAPL").success  # as the message says
    # The 2:1 split of 2000-06-21 is a corporate action, not an error, even under strict.
    assert run_bars(strict, instance, key="2000-06-01|AAPL").success


def test_checks_judge_what_changed_and_keep_failing_on_earlier_failures(sample_config, instance) -> None:
    """After a first (whole-table) verdict, a check re-judges only the partitions materialised since, plus
    the whole history of the symbols it failed on: AAPL's unexplained jump of 2000-09-29 keeps failing."""
    first, _ = _run_with_checks(sample_config, instance, "2000-07-01|AAPL", "2000-10-01|AAPL")
    checks = _evaluations(first)
    assert checks["ohlcv_schema"].metadata["scope"].value == "the whole stored table"
    assert checks["price_anomalies"].metadata["per_symbol"].value == {"AAPL": {"price_jump": 1}}
    aapl_rows = checks["ohlcv_schema"].metadata["rows_checked"].value

    second, ran = _run_with_checks(sample_config, instance, "2012-01-01|IBM", "2012-02-01|IBM")
    assert second.success and ran == ["2012-01-01|IBM", "2012-02-01|IBM"]  # the failure is only a warning
    checks = _evaluations(second)
    ibm_rows = query(sample_config, "SELECT count(*) FROM bars WHERE symbol = 'IBM'")[0][0]
    for name in ("ohlcv_schema", "no_duplicates", "calendar_complete"):
        assert checks[name].passed
        assert checks[name].metadata["scope"].value.startswith("changed since the last evaluation: 2 partition(s)")
        assert checks[name].metadata["rows_checked"].value == ibm_rows  # not AAPL's again
    anomalies = checks["price_anomalies"]
    assert not anomalies.passed and anomalies.metadata["per_symbol"].value == {"AAPL": {"price_jump": 1}}
    assert "whole history of 1 symbol(s) failing then" in anomalies.metadata["scope"].value
    assert anomalies.metadata["rows_checked"].value == ibm_rows + aapl_rows

    # Nothing changed since: nothing to judge, and the earlier verdicts stand.
    third, _ = _run_with_checks(sample_config, instance, "2012-01-01|IBM", "2012-01-01|IBM")
    checks = _evaluations(third)
    assert checks["no_duplicates"].metadata["scope"].value.startswith("changed since the last evaluation: 1 partition")
    assert not checks["price_anomalies"].passed


def test_a_changed_quality_setting_judges_the_whole_table_again(tmp_path, instance) -> None:
    config = load_config(write_config(tmp_path, {"us_stocks": SAMPLE_MARKET}))
    _run_with_checks(config, instance, "2000-07-01|AAPL", "2000-10-01|AAPL")
    looser = load_config(write_config(tmp_path, {"us_stocks": {**SAMPLE_MARKET, "quality": {"max_open_gap": 0.9}}}))
    result, _ = _run_with_checks(looser, instance, "2012-01-01|IBM", "2012-01-01|IBM")
    anomalies = _evaluations(result)["price_anomalies"]
    assert anomalies.metadata["scope"].value == "the whole stored table"
    assert anomalies.passed  # the 2000-09-29 jump is within the new threshold


def test_a_later_end_rejudges_from_the_old_ends_window_and_an_earlier_end_everything(tmp_path, instance) -> None:
    """Moving `end` later (a fixed-`end` market's daily close) keeps the checks incremental: they read every
    symbol from the window that held the old `end` (its grid grew), not the whole table; moving it earlier
    judges everything, since stored bars after the new `end` are then off the calendar anywhere."""
    def config(end: str) -> JutsuConfig:
        return load_config(write_config(tmp_path, {"us_stocks": {**SAMPLE_MARKET, "end": end}}))

    first, _ = _run_with_checks(config("2012-01-20"), instance, "2011-11-01|IBM", "2012-01-01|MSFT")
    assert all(e.passed for e in _evaluations(first).values())
    assert _evaluations(first)["ohlcv_schema"].metadata["scope"].value == "the whole stored table"

    later = config("2012-02-10")
    second, _ = _run_with_checks(later, instance, "2012-01-01|IBM", "2012-02-01|IBM")
    window = query(later, "SELECT count(*), count(DISTINCT symbol) FROM bars WHERE ts >= '2012-01-01'")[0]
    whole = query(later, "SELECT count(*) FROM bars")[0][0]
    assert window[1] == 2 and window[0] < whole  # IBM's and MSFT's January (MSFT's up to the old end)
    for name, evaluation in _evaluations(second).items():
        assert evaluation.passed, name
        if name != "fresh":
            scope = evaluation.metadata["scope"].value
            assert "every symbol from 2012-01-01 (end moved from 2012-01-20 to 2012-02-10)" in scope, name
            assert evaluation.metadata["rows_checked"].value == window[0], name

    # MSFT's January now ends at 2012-01-20 inside a window reaching 2012-01-31: the grown grid is judged.
    assert query(later, "SELECT max(ts) FROM bars WHERE symbol = 'MSFT'")[0][0].date() == dt.date(2012, 1, 20)
    third, _ = _run_with_checks(later, instance, "2012-02-01|IBM", "2012-02-01|IBM")
    assert _evaluations(third)["calendar_complete"].passed  # unchanged end: only IBM's February judged
    rejudged, _ = _run_with_checks(config("2012-01-25"), instance, "2012-01-01|IBM", "2012-01-01|IBM")
    earlier = _evaluations(rejudged)
    assert earlier["calendar_complete"].metadata["scope"].value == "the whole stored table"
    assert not earlier["calendar_complete"].passed  # IBM's bars after the new end are off the calendar


def test_where_a_moved_end_stops_a_verdict_holding(tmp_path) -> None:
    from jutsu_pipeline.assets.bars.checks import _end_moved_since

    p = partitioning(load_config(write_config(tmp_path, {"us_stocks": {**SAMPLE_MARKET, "end": "2012-02-10"}})))
    assert _end_moved_since(p, "2012-02-10") is False  # unchanged
    assert _end_moved_since(p, "2012-01-20") == dt.datetime(2012, 1, 1, tzinfo=UTC)  # later: the old end's month
    for previous in ("2012-03-01", "", None, "not a date"):  # earlier, was open-ended, absent, unreadable
        assert _end_moved_since(p, previous) is None, previous
