"""The self-contained HTML page of one market: the chart library (TradingView Lightweight Charts,
Apache-2.0, vendored) and script inlined, each symbol's bars in their own JSON tag, parsed only when the
symbol is selected (a 500-symbol page opens as fast as a 5-symbol one).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import duckdb

from jutsu_pipeline.config import JutsuConfig
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.report import data, report_path
from jutsu_pipeline.report.data import PartitionStatus

CHART_LIBRARY = "lightweight-charts.standalone.production.js"
LEADERBOARD_ROWS = 20
BEST_CURVES = 5


@dataclass(frozen=True)
class ReportSummary:
    """What was written, for the asset's metadata and the CLI."""

    path: Path
    bytes: int
    coverage_counts: dict[str, dict[str, int]]  # timeframe -> Cell code -> partitions
    price_bars: int  # bars embedded in the price charts, all symbols and timeframes
    leaderboard_rows: int


def _static(name: str) -> str:
    return resources.files("jutsu_pipeline.report").joinpath("static", name).read_text(encoding="utf-8")


def _script_json(value: object) -> str:
    """JSON safe inside <script>: no `</` can close the tag early."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def build_report(
    con: duckdb.DuckDBPyConnection,
    config: JutsuConfig,
    market: str,
    statuses: Mapping[str, Mapping[str, PartitionStatus | None]],
) -> tuple[str, ReportSummary]:
    """The page's HTML and a summary. `statuses`: per timeframe, each bars partition key's status."""
    now = dt.datetime.now(dt.timezone.utc)
    settings = config.markets[market]
    partitionings = [BarsPartitioning(market, tf, settings) for tf in settings.timeframes]
    timeframes = [p.timeframe.value for p in partitionings]
    coverage = [data.coverage(con, p, statuses.get(p.timeframe.value, {}), now) for p in partitionings]
    columns = settings.indicators.columns()
    prices = {tf: data.price_series(con, timeframe=tf, symbols=settings.symbols, columns=columns,
                                    adjusted=settings.adjusted_prices, bars=config.report_bars) for tf in timeframes}
    board = data.leaderboard(con, market, LEADERBOARD_ROWS) if settings.strategies else {"rows": [], "curves": {}}
    main = {
        "market": market,
        "generated_at": now.isoformat(timespec="seconds"),
        "timeframes": timeframes,
        "symbols": list(settings.symbols),
        "coverage": [asdict(c) for c in coverage],
        "leaderboard": board,
        "has_strategies": bool(settings.strategies),
        "best_curves": BEST_CURVES,
    }
    price_tags = "\n".join(
        f'<script type="application/json" id="p:{html.escape(tf)}:{html.escape(symbol)}">{_script_json(series)}</script>'
        for tf, by_symbol in prices.items() for symbol, series in by_symbol.items()
    )
    title = f"{market} — jutsu-pipeline report"
    subtitle = (f"{len(settings.symbols)} symbols, {', '.join(timeframes)} bars, provider {settings.provider}, "
                f"calendar {settings.calendar}, history from {settings.start}"
                f"{f' to {settings.end}' if settings.end else ''}. Generated {main['generated_at']} "
                f"from {config.lake_target().describe() if config.is_lake else config.database.name}.")
    page = _TEMPLATE.format(
        title=html.escape(title),
        subtitle=html.escape(subtitle),
        market=html.escape(market),
        bars=config.report_bars,
        css=_static("report.css"),
        library=_static(CHART_LIBRARY),
        main=_script_json(main),
        prices=price_tags,
        script=_static("report.js"),
    )
    summary = ReportSummary(
        path=report_path(config, market),
        bytes=len(page.encode("utf-8")),
        coverage_counts={c.timeframe: c.counts for c in coverage},
        price_bars=sum(len(s["c"]) for by_symbol in prices.values() for s in by_symbol.values()),
        leaderboard_rows=len(board["rows"]),
    )
    return page, summary


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
{css}
</style>
</head>
<body>
<header><h1>{title}</h1><p>{subtitle}</p></header>
<main>
<section id="coverage-section">
<h2>Coverage</h2>
<p class="caption">Each row is a symbol, each column a bars partition window (the timeframe's partition grain: by
default a year of daily or hourly bars, a quarter of minute bars; with many windows a column holds several and shows
the worst), coloured by its state in the Dagster instance and the bars stored in DuckDB. Hover for details; click a
row to chart that symbol.</p>
<div id="coverage"></div>
</section>
<section id="prices">
<h2>Price and indicators</h2>
<div class="controls"><label>Timeframe <select id="timeframe"></select></label>
<label>Symbol <select id="symbol"></select></label></div>
<p class="caption" id="price-caption"></p>
<div id="price"></div>
<p class="caption">Candles with SMA and Bollinger bands, RSI (30/70 lines) and MACD below; at most the latest
{bars} bars of each symbol (<code>report_bars</code> in jutsu.yaml), prices rounded to 4 significant digits (at least
cents) for the page. The full history is in DuckDB (<code>bars_with_indicators</code>).</p>
</section>
<section id="leaderboard-section">
<h2>Leaderboard</h2>
<div id="leaderboard"></div>
</section>
</main>
<footer>jutsu-pipeline report for market {market}. Charts by TradingView Lightweight Charts&trade;
(Copyright &copy; TradingView, Inc., <a href="https://www.tradingview.com/">tradingview.com</a>), Apache License 2.0.</footer>
<script type="application/json" id="jutsu-main">{main}</script>
{prices}
<script>
{library}
</script>
<script>
{script}
</script>
</body>
</html>
"""
