"""Indicators of a set of symbols recomputed from their bars and replaced in one transaction: the whole
history, or (incremental) only the bars after the stored ones, from a warm-up window before them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import cast

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from jutsu_pipeline.indicators.frame import as_specs, column_names, indicator_frame
from jutsu_pipeline.indicators.params import IndicatorParams
from jutsu_pipeline.indicators.registry import IndicatorSpec
from jutsu_pipeline.storage.indicators import (
    Resume,
    ensure_indicator_table,
    intact_symbols,
    replace_indicators,
    stored_at,
)
from jutsu_pipeline.storage.scope import EARLIEST, OHLCV, bars_relation, read_bars
from jutsu_pipeline.storage.transactions import retry_conflicts, transaction


def ensure_indicator_schema(con: duckdb.DuckDBPyConnection, params: IndicatorParams | Iterable[IndicatorSpec]) -> list[str]:
    """Create `indicators` and its view; add the columns `params` needs (one DOUBLE per output).

    Columns of other parameter sets are kept (markets and strategies may need different periods).
    Returns the columns added. Idempotent; issues no DDL when nothing is missing.
    """
    return ensure_indicator_table(con, column_names(as_specs(params)))


def compute_indicators(
    con: duckdb.DuckDBPyConnection,
    *,
    timeframe: str,
    symbols: Sequence[str],
    params: IndicatorParams | Iterable[IndicatorSpec],
    adjusted: bool = True,
    incremental: bool = False,
) -> int:
    """Compute the indicators `params` lists (a config block or specs) of `symbols` at `timeframe` from
    `bars_adjusted` (raw `bars` unless `adjusted`) and replace their rows. Returns rows written.

    One read, one in-memory pass over all symbols, then (in the read's transaction) DELETE of the
    replaced rows and INSERT of the computed ones via Arrow: afterwards the symbols' rows are exactly
    the new ones. Symbols without bars lose their rows.

    `incremental`: a symbol whose bars up to its last computed one are unchanged (same count and
    content hash, same columns) keeps its rows; only bars after it are computed, by TA-Lib over a warm-up
    window before them (`IndicatorSpec.warmup_bars`), and written. Any other symbol (bars revised,
    deleted or re-adjusted inside its history, other columns, never computed) is recomputed whole.
    """
    specs = as_specs(params)
    columns = column_names(specs)
    ensure_indicator_schema(con, specs)
    symbols = list(dict.fromkeys(symbols))
    warmups = [spec.warmup_bars() for spec in specs]
    known = [w for w in warmups if w is not None]
    warmup = max(known, default=1) if len(known) == len(warmups) else None  # None: some needs the whole history

    def replace() -> int:
        with transaction(con):
            relation = bars_relation(con, symbols, "bars_adjusted" if adjusted else "bars")
            resumed: dict[str, Resume] = {}
            if incremental and warmup is not None:
                resumed = intact_symbols(con, timeframe=timeframe, symbols=symbols, relation=relation, columns=columns,
                                         warmup=warmup)
            scope = [s for s in symbols if s not in resumed or resumed[s].new_bars]
            resumed = {s: r for s, r in resumed.items() if r.new_bars}
            if not scope:
                return 0
            since = {s: r.warmup_from for s, r in resumed.items()}
            bars = cast(pl.DataFrame, pl.from_arrow(read_bars(con, timeframe, scope, relation=relation, columns=OHLCV,
                                                              since=since, row_hash=True, resolved=True)))
            frame = indicator_frame(bars, specs)
            if resumed:
                frame = _continue(con, frame, timeframe, resumed, specs)
            staged = frame.to_arrow()
            replace_indicators(con, timeframe=timeframe, symbols=scope, staged=staged, inputs=_inputs(bars, resumed),
                               columns=columns, resumed=resumed)
        return staged.num_rows

    return retry_conflicts(replace, f"indicators {timeframe}")


def _inputs(bars: pl.DataFrame, resumed: Mapping[str, Resume]) -> pa.Table:
    """Per symbol of `bars` (sorted by symbol and ts, with `row_hash`), the record of the bars its rows now
    describe: the bars after a resumed symbol's `last_ts` added to its stored record, every bar otherwise."""
    lengths = bars.get_column("symbol").rle().struct.field("len").to_numpy().astype(np.int64)
    starts = np.cumsum(lengths) - lengths
    symbols = bars.get_column("symbol").gather(starts)
    ts = bars.get_column("ts")
    prior = [resumed.get(s) for s in symbols.to_list()]
    after = pl.Series([r.last_ts if r else EARLIEST for r in prior], dtype=ts.dtype).to_numpy()
    new = ts.to_numpy() > np.repeat(after, lengths)  # the bars the stored record lacks
    hashes = np.where(new, bars.get_column("row_hash").to_numpy(), np.uint64(0))
    return pa.table({
        "symbol": symbols.to_arrow(),
        "bars": np.array([r.bars if r else 0 for r in prior], np.int64) + np.add.reduceat(new, starts, dtype=np.int64),
        "last_ts": ts.gather(starts + lengths - 1).to_arrow(),
        "content": np.array([r.content if r else 0 for r in prior], np.uint64) ^ np.bitwise_xor.reduceat(hashes, starts),
    }) if lengths.size else pa.table({"symbol": [], "bars": [], "last_ts": [], "content": []})


def _continue(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, timeframe: str, resumed: dict[str, Resume],
              specs: Sequence[IndicatorSpec]) -> pl.DataFrame:
    """The rows of `frame` after each resumed symbol's `last_ts` (the warm-up rows are stored already), with
    cumulative outputs shifted to continue from the stored value at `last_ts`."""
    last = pl.DataFrame({"symbol": list(resumed), "_last_ts": [r.last_ts for r in resumed.values()]},
                        schema={"symbol": pl.String, "_last_ts": frame.schema["ts"]})
    frame = frame.join(last, on="symbol", how="left", maintain_order="left")
    cumulative = [c for spec in specs if spec.indicator.cumulative for c in spec.columns()]
    if cumulative:
        stored = cast(pl.DataFrame, pl.from_arrow(stored_at(con, timeframe=timeframe, columns=cumulative,
                                                            last_ts={s: r.last_ts for s, r in resumed.items()})))
        at_last = frame.filter(pl.col("ts") == pl.col("_last_ts")).select("symbol", *cumulative)
        offsets = stored.join(at_last, on="symbol", suffix="_recomputed")
        frame = frame.join(offsets.select("symbol", *(
            (pl.col(c) - pl.col(f"{c}_recomputed")).alias(f"_offset_{c}") for c in cumulative)), on="symbol",
            how="left", maintain_order="left")
        frame = frame.with_columns(
            pl.when(pl.col("_last_ts").is_null()).then(pl.col(c)).otherwise(pl.col(c) + pl.col(f"_offset_{c}")).alias(c)
            for c in cumulative)
    keep = pl.col("_last_ts").is_null() | (pl.col("ts") > pl.col("_last_ts"))
    return frame.filter(keep).select("symbol", "ts", *column_names(specs))
