"""The market report: what the page says about coverage, prices and the leaderboard, and that it renders."""

from __future__ import annotations

import datetime as dt
import json
import re
import stat
from pathlib import Path

import dagster as dg
import pytest

from jutsu_pipeline.assets.backtest.assets import build_leaderboard_asset
from jutsu_pipeline.assets.report.assets import build_report_asset
from jutsu_pipeline.config import JutsuConfig, load_config
from jutsu_pipeline.report import report_path
from jutsu_pipeline.resources import JutsuDuckDBResource
from jutsu_pipeline_tests.browser import CHART_PIXELS, open_page
from jutsu_pipeline_tests.conftest import SAMPLE_MARKET, query, write_config
from jutsu_pipeline_tests.helpers import bad_volume_market_data, partitioning, run_backtest, run_bars, run_indicators

SYMBOLS = ["AAPL", "FB", "GOOG", "IBM", "MSFT"]


def _materialize_report(config: JutsuConfig, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    asset = build_report_asset(config, [partitioning(config)])
    result = dg.materialize([asset], instance=instance, selection=[asset.key],
                            resources={"duckdb": JutsuDuckDBResource(database=str(config.database))})
    assert result.success
    return result


def _unpack(deltas: list[int | None], digits: int) -> list[float | None]:
    """The page's decoding of packed series (report.js `unpack`)."""
    total, out = 0, []
    for delta in deltas:
        if delta is None:
            out.append(None)
        else:
            total += delta
            out.append(round(total / 10**digits, digits))
    return out


def _page_data(path: Path) -> tuple[dict, dict[str, dict]]:
    page = path.read_text()
    main = json.loads(re.search(r'<script type="application/json" id="jutsu-main">(.*?)</script>', page, re.S)[1])
    prices = {m[1]: json.loads(m[2]) for m in
              re.finditer(r'<script type="application/json" id="p:1d:([A-Z]+)">(.*?)</script>', page, re.S)}
    return main, prices


def test_coverage_marks_failed_missing_partial_and_empty_windows(sample_config, instance) -> None:
    failed = run_bars(sample_config, instance, start="2000-03-01|AAPL", end="2000-05-01|MSFT",
                      market_data=bad_volume_market_data("IBM", dt.date(2000, 4, 3)))
    assert not failed.success  # IBM 2000-04 has a negative volume: that partition fails, the others land
    assert run_bars(sample_config, instance, start="2012-04-01|FB", end="2012-06-01|FB").success
    assert run_indicators(sample_config, instance, ["AAPL"]).success

    result = _materialize_report(sample_config, instance)
    path = report_path(sample_config, "us_stocks")
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["path"].value == str(path) and meta["bytes"].value == path.stat().st_size
    page = path.read_text()
    assert "<script src" not in page and "<link" not in page and "@import" not in page  # nothing to fetch

    main, prices = _page_data(path)
    (coverage,) = main["coverage"]
    assert coverage["symbols"] == SYMBOLS and not coverage["binned"]
    assert len(coverage["columns"]) == 157  # months 2000-03 .. 2013-03
    cell = {s: dict(zip(coverage["columns"], coverage["cells"][i])) for i, s in enumerate(SYMBOLS)}
    bars = {s: dict(zip(coverage["columns"], coverage["bars"][i])) for i, s in enumerate(SYMBOLS)}
    expected = dict(zip(coverage["columns"], coverage["expected"]))
    assert cell["IBM"]["2000-04-01"] == "f" and cell["IBM"]["2000-03-01"] == "c"
    assert cell["AAPL"]["2000-04-01"] == "c" and cell["AAPL"]["2001-01-01"] == "m"
    assert cell["FB"]["2000-03-01"] == "e"  # materialised, before FB's first bar: valid, not a gap
    assert (cell["FB"]["2012-04-01"], cell["FB"]["2012-05-01"], cell["FB"]["2012-06-01"]) == ("e", "p", "c")
    may = query(sample_config, "SELECT count(*) FROM bars WHERE symbol = 'FB' AND ts < '2012-06-01'")[0][0]
    assert bars["FB"]["2012-05-01"] == may and 0 < may < expected["2012-05-01"] == 22  # Memorial Day is closed
    assert coverage["counts"]["f"] == 1 and coverage["counts"]["p"] == 1
    assert coverage["counts"]["c"] + coverage["counts"]["e"] + coverage["counts"]["p"] == 5 * 3 - 1 + 3
    assert sum(coverage["counts"].values()) == 5 * 157

    # Prices: the stored adjusted bars (rounded for display), with indicators where they were computed.
    assert set(prices) == {"AAPL", "FB", "IBM", "MSFT"}  # GOOG has no bars before 2004: the page says so
    raw = prices["AAPL"]
    aapl = {**raw, "c": _unpack(raw["c"], raw["digits"]),
            **{k: _unpack(raw[k]["v"], raw[k]["d"]) for k in raw["names"]}}
    rows = query(sample_config, "SELECT epoch(ts)::BIGINT, close, sma_20, rsi_14 FROM bars_with_indicators "
                                "WHERE symbol = 'AAPL' ORDER BY ts")
    assert len(aapl["c"]) == len(rows) == 1 + len(aapl["dt"])
    assert aapl["unit"] * (aapl["t0"] + sum(aapl["dt"])) == rows[-1][0]
    assert aapl["c"][-1] == pytest.approx(rows[-1][1], rel=1e-4)
    assert aapl["sma"][-1] == pytest.approx(rows[-1][2], rel=1e-4) and aapl["rsi"][-1] == pytest.approx(rows[-1][3], abs=0.01)
    assert aapl["sma"][:19] == [None] * 19 and aapl["names"]["macd"] == "macd_12_26_9"
    assert "sma" not in prices["IBM"] and prices["IBM"]["names"] == {}  # no indicators computed for IBM
    assert main["leaderboard"] == {"rows": [], "curves": {}} and not main["has_strategies"]


def test_report_bars_caps_the_embedded_history(tmp_path: Path, instance) -> None:
    config = load_config(write_config(tmp_path, {"us_stocks": {**SAMPLE_MARKET, "start": "2012-01-01"}}))
    config = config.model_copy(update={"report_bars": 40})
    assert run_bars(config, instance, start="2012-01-01|AAPL", end="2013-03-01|AAPL").success
    _materialize_report(config, instance)
    assert stat.S_IMODE(report_path(config, "us_stocks").stat().st_mode) == 0o644  # others may open the page
    _, prices = _page_data(report_path(config, "us_stocks"))
    last = query(config, "SELECT epoch(max(ts))::BIGINT FROM bars WHERE symbol = 'AAPL'")[0][0]
    assert len(prices["AAPL"]["c"]) == 40 and prices["AAPL"]["unit"] == 86_400
    assert 86_400 * (prices["AAPL"]["t0"] + sum(prices["AAPL"]["dt"])) == last


STRATEGIES = [
    {"name": "sma_10_30", "type": "sma_cross", "params": {"fast": 10, "slow": 30}},
    {"name": "rsi_30_70", "type": "rsi_reversion", "params": {"period": 14, "lower": 30, "upper": 70}},
]


@pytest.mark.slow
def test_the_page_renders_every_chart_in_headless_chromium(tmp_path: Path, instance) -> None:
    config = load_config(write_config(tmp_path, {"us_stocks": {**SAMPLE_MARKET, "start": "2011-01-01",
                                                               "strategies": STRATEGIES}}))
    assert run_bars(config, instance, start="2011-01-01|AAPL", end="2013-03-01|MSFT").success
    assert run_indicators(config, instance, SYMBOLS).success
    assert run_backtest(config, instance, SYMBOLS).success
    leaderboard = build_leaderboard_asset(config, [partitioning(config)])
    assert dg.materialize([leaderboard], instance=instance, selection=[leaderboard.key],
                          resources={"duckdb": JutsuDuckDBResource(database=str(config.database))}).success
    _materialize_report(config, instance)
    main, _ = _page_data(report_path(config, "us_stocks"))
    assert len(main["leaderboard"]["rows"]) == 10 and set(main["leaderboard"]["curves"]) == {str(r) for r in range(1, 11)}

    with open_page(report_path(config, "us_stocks").as_uri()) as page:
        assert page.evaluate("document.body.dataset.ready") == "true"
        charts = {c["name"]: c for c in page.evaluate(CHART_PIXELS)}
        assert set(charts) == {"coverage-1d", "price", "leaderboard-best", "leaderboard-detail"}
        for chart in charts.values():  # drawn: canvases with many painted pixels in several colours
            assert chart["canvases"] >= 1 and chart["width"] > 300 and chart["height"] > 80, chart
            assert chart["painted"] > 2000 and chart["colours"] > 5, chart
        # Another symbol and another leaderboard row redraw their charts.
        page.evaluate("const s = document.getElementById('symbol'); s.value = 'FB';"
                      "s.dispatchEvent(new Event('change')); document.querySelector('tr[data-rank=\"3\"]').click()")
        caption = page.evaluate("document.getElementById('price-caption').textContent")
        assert caption.startswith("FB (1d): the latest 196 bars, 2012-05-18 to 2013-03-01")
        redrawn = {c["name"]: c for c in page.evaluate(CHART_PIXELS)}
        assert redrawn["price"]["painted"] > 2000 and redrawn["leaderboard-detail"]["painted"] > 2000
        page.screenshot(tmp_path / "report.png")
        assert (tmp_path / "report.png").stat().st_size > 50_000
        assert page.problems() == []
