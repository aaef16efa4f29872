"""Pictures and tables of backtest results: pure functions of the result frames."""

from __future__ import annotations

import math
import re
from pathlib import Path

import polars as pl

LEADERBOARD_COLUMNS: dict[str, str] = {
    "strategy": "Strategy",
    "symbol": "Symbol",
    "sharpe_ratio": "Sharpe",
    "return_pct": "Return %",
    "return_ann_pct": "Ann. return %",
    "max_drawdown_pct": "Max DD %",
    "n_trades": "Trades",
    "win_rate_pct": "Win rate %",
}


def rank_by_sharpe(performance: pl.DataFrame) -> pl.DataFrame:
    """Rows ordered by Sharpe ratio, best first (NULL Sharpe last), with a 1-based ``rank`` column."""
    ranked = performance.sort(["sharpe_ratio", "strategy", "symbol"], descending=[True, False, False], nulls_last=True)
    return ranked.with_row_index("rank", offset=1)


def leaderboard_markdown(performance: pl.DataFrame, *, top: int | None = None) -> str:
    """Markdown table of strategy x symbol ranked by Sharpe (optionally only the ``top`` rows)."""
    ranked = rank_by_sharpe(performance)
    if top is not None:
        ranked = ranked.head(top)
    header = ["Rank", *LEADERBOARD_COLUMNS.values()]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in ranked.iter_rows(named=True):
        cells = [str(row["rank"])] + [_cell(row.get(col)) for col in LEADERBOARD_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value).replace("|", "\\|")


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", part)


def equity_chart_path(directory: Path, strategy: str, symbol: str, timeframe: str) -> Path:
    """Where ``write_equity_chart`` puts the picture of one strategy x symbol."""
    return Path(directory) / f"{_safe(strategy)}__{_safe(symbol)}__{_safe(timeframe)}.png"


def _figure():  # noqa: ANN202 - (Figure, top Axes, bottom Axes); matplotlib loads with the first chart
    """A 10 x 6 in figure: a tall panel over a drawdown (%) panel sharing its x axis."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # noqa: PLC0415

    fig = Figure(figsize=(10, 6), dpi=100)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    bottom.set_ylabel("Drawdown %")
    for axes in (top, bottom):
        axes.grid(alpha=0.3)
    return fig, top, bottom


def _save(fig, path: Path) -> Path:  # noqa: ANN001 - a matplotlib Figure
    fig.subplots_adjust(left=0.09, right=0.98, top=0.94, bottom=0.06, hspace=0.08)  # tight_layout cost ~55 ms
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def write_equity_chart(
    equity: pl.DataFrame, *, strategy: str, symbol: str, timeframe: str, directory: Path
) -> Path:
    """PNG of the equity curve with the drawdown (in %) in a panel below; returns the file path.

    ``equity`` holds at least ts, equity, drawdown_pct (a fraction) for this strategy x symbol.
    """
    data = equity.sort("ts")
    ts = data["ts"].dt.replace_time_zone(None).to_list()
    fig, top, bottom = _figure()
    top.plot(ts, data["equity"].to_list(), color="tab:blue", linewidth=1)
    top.set_title(f"{strategy} - {symbol} ({timeframe})")
    top.set_ylabel("Equity")
    bottom.fill_between(ts, (-100 * data["drawdown_pct"]).to_list(), 0, color="tab:red", alpha=0.4, linewidth=0)
    return _save(fig, equity_chart_path(directory, strategy, symbol, timeframe))


def write_best_curves_chart(equity: pl.DataFrame, titles: list[tuple[tuple[str, str, str], str]], path: Path) -> Path:
    """One PNG comparing several results: return on initial equity (%) on top, drawdown (%) below.

    ``equity`` holds strategy, symbol, timeframe, ts, equity, drawdown_pct; ``titles`` maps each
    (strategy, symbol, timeframe) to its legend label, in drawing order.
    """
    fig, top, bottom = _figure()
    for (strategy, symbol, timeframe), label in titles:
        part = equity.filter((pl.col("strategy") == strategy) & (pl.col("symbol") == symbol)
                             & (pl.col("timeframe") == timeframe)).sort("ts")
        if not part.height:
            continue
        ts = part["ts"].dt.replace_time_zone(None).to_list()
        first = part["equity"][0]
        line, = top.plot(ts, (100 * (part["equity"] / first - 1)).to_list(), linewidth=1.2, label=label)
        bottom.plot(ts, (-100 * part["drawdown_pct"]).to_list(), linewidth=0.8, color=line.get_color())
    top.set_ylabel("Return %")
    top.set_title("Best results by Sharpe: return on initial cash and drawdown")
    top.legend(loc="upper left", fontsize=8)
    return _save(fig, path)
