"""Indicators of a set of symbols recomputed from their bars and replaced in one transaction: the whole
history, or (incremental) only the bars after the stored ones, from a warm-up window before them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import duckdb
import numpy as np
import pyarrow as pa

from jutsu_pipeline.indicators.frame import as_specs, check_finite, column_names, indicator_columns, sorted_runs
from jutsu_pipeline.indicators.params import IndicatorParams
from jutsu_pipeline.indicators.registry import IndicatorSpec
from jutsu_pipeline.storage.indicators import (
    Resume,
    ensure_indicator_table,
    intact_symbols,
    read_inputs,
    replace_indicators,
    stored_at,
)
from jutsu_pipeline.storage.scope import bars_relation
from jutsu_pipeline.storage.transactions import retry_conflicts, transaction
from jutsu_pipeline.storage.versions import version_parts


def ensure_indicator_schema(con: duckdb.DuckDBPyConnection, params: IndicatorParams | Iterable[IndicatorSpec]) -> list[str]:
    """`storage.indicators.ensure_indicator_table` for the columns `params` needs: returns the ones added."""
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

    One read of the columns TA-Lib takes (sorted in memory only when the storage order is not already by
    symbol and ts), TA-Lib per symbol, then (in the read's transaction) DELETE of the replaced rows and
    INSERT of the computed ones via Arrow: afterwards the symbols' rows are exactly the new ones. Symbols
    without bars lose their rows.

    `incremental`: a symbol whose bars up to its last computed one are unchanged (same count and
    content hash, same columns) keeps its rows; only bars after it are computed, by TA-Lib over a warm-up
    window before them (`IndicatorSpec.warmup_bars`), and written. Any other symbol (bars revised,
    deleted or re-adjusted inside its history, other columns, never computed) is recomputed whole.
    """
    specs = as_specs(params)
    columns = column_names(specs)
    ensure_indicator_schema(con, specs)
    symbols = list(dict.fromkeys(symbols))
    inputs = tuple(dict.fromkeys(name for spec in specs for name in spec.indicator.inputs))
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
            read = read_inputs(con, timeframe=timeframe, symbols=scope, relation=relation, columns=inputs,
                               since={s: r.warmup_from for s, r in resumed.items()})
            staged, parts = _computed(con, read, scope, resumed, specs, timeframe, relation)
            replace_indicators(con, timeframe=timeframe, symbols=scope, staged=staged, inputs=parts, columns=columns,
                               resumed=resumed)
        return staged.num_rows

    return retry_conflicts(replace, f"indicators {timeframe}")


def _computed(con: duckdb.DuckDBPyConnection, read: dict[str, np.ndarray], scope: Sequence[str], resumed: Mapping[str, Resume],
              specs: Sequence[IndicatorSpec], timeframe: str, relation: str) -> tuple[pa.Table, pa.Table]:
    """The rows to insert (symbol, ts and the indicator columns, NULL for TA-Lib's NaN) from `read`
    (`read_inputs` of `scope`), and their symbols' input records: a resumed symbol's rows only after its
    `last_ts`, cumulative outputs continuing from its stored value there, its record extended."""
    position, ts = read["symbol_no"], read["ts"].view(np.int64)
    order, starts, lengths = sorted_runs(position, ts)
    sorted_ = (lambda a: a) if order is None else (lambda a: a[order])  # noqa: E731 - zero-copy when stored in order
    position, ts = sorted_(position), sorted_(ts)
    names = [scope[k] for k in position[starts].tolist()]
    arrays = {c: sorted_(np.ma.filled(v, np.nan)) for c, v in read.items()  # NULL (masked) as NaN: not finite
              if c not in ("symbol_no", "ts", "row_hash")}
    check_finite(arrays, names, starts, f"{relation} {timeframe}")
    values = indicator_columns(arrays, lengths, specs)
    keep: slice | np.ndarray = slice(None)
    kept = lengths
    if resumed:  # the warm-up rows are stored already: keep the bars after each resumed symbol's last_ts
        after = pa.array([resumed[s].last_ts if s in resumed else None for s in names], pa.timestamp("us", "UTC"))
        new = ts > np.repeat(after.cast(pa.int64()).fill_null(np.iinfo(np.int64).min).to_numpy(), lengths)
        keep, kept = new, np.add.reduceat(new, starts, dtype=np.int64)
        cumulative = [c for spec in specs if spec.indicator.cumulative for c in spec.columns()]
        if cumulative:  # shift the recomputed running totals onto the stored value at last_ts
            stored = stored_at(con, timeframe=timeframe, columns=cumulative,
                               last_ts={s: r.last_ts for s, r in resumed.items()})
            row = dict(zip(stored.column("symbol").to_pylist(), range(stored.num_rows)))
            at_last = starts + lengths - kept - 1  # the bar at last_ts (resumed runs; others: not used)
            for column in cumulative:
                base = stored.column(column).to_numpy(zero_copy_only=False)
                offset = np.array([base[row[s]] if s in row else np.nan for s in names]) - values[column][at_last]
                values[column] += np.repeat(np.where([s in resumed for s in names], offset, 0.0), lengths)
    staged_ts = pa.array(ts[keep], pa.timestamp("us", "UTC"))
    symbol = pa.DictionaryArray.from_arrays(pa.array(position[keep]), pa.array(scope, pa.string()))
    staged = pa.table({"symbol": symbol, "ts": staged_ts, **{c: _nan_as_null(v[keep]) for c, v in values.items()}})
    parts = version_parts(pa.array(names, pa.string()), kept, staged_ts, sorted_(read["row_hash"])[keep])
    if resumed:  # a resumed symbol's record: its stored bars and the ones written now
        rows = [row if (r := resumed.get(row["symbol"])) is None else
                {**row, "n": row["n"] + r.bars, "first_ts": r.first_ts, "content": row["content"] ^ r.content}
                for row in parts.to_pylist()]
        parts = pa.Table.from_pylist(rows, parts.schema)
    return staged, parts


def _nan_as_null(values: np.ndarray) -> pa.Array:
    """`values` as an Arrow array, NULL where NaN: the data zero-copy, the validity bitmap packed by numpy
    (a quarter of `pa.array(values, from_pandas=True)`'s cost)."""
    valid = np.packbits(~np.isnan(values), bitorder="little")
    return pa.Array.from_buffers(pa.float64(), values.size, [pa.py_buffer(valid), pa.py_buffer(values)])

