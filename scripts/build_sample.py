"""Rebuild jutsu_pipeline/sample_data/<SYMBOL>.parquet from the shared CSV (run once; the Parquet files are committed).

Usage: python scripts/build_sample.py ../shared/data/us_stocks_daily_2000_2013.csv.gz jutsu_pipeline/sample_data
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl


def build(csv_path: Path, out_dir: Path) -> list[Path]:
    frame = pl.read_csv(csv_path, try_parse_dates=True)
    frame = frame.rename({"Ticker": "symbol", "Date": "date", "Open": "open", "High": "high", "Low": "low",
                          "Close": "close", "Volume": "volume", "Adj Close": "adj_close"})
    frame = frame.with_columns(pl.col("date").cast(pl.Date), pl.col("volume").cast(pl.Float64))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (symbol,), part in frame.sort("symbol", "date").group_by("symbol", maintain_order=True):
        path = out_dir / f"{symbol}.parquet"
        part.drop("symbol").write_parquet(path, compression="zstd", statistics=True)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in build(Path(sys.argv[1]), Path(sys.argv[2])):
        print(path)
