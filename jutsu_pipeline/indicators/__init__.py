"""Technical indicators over DuckDB bars, equal to TA-Lib 0.8 (see docs/indicators.md)."""

from jutsu_pipeline.indicators.compute import compute_indicators
from jutsu_pipeline.indicators.frame import indicator_frame
from jutsu_pipeline.indicators.params import IndicatorColumns, IndicatorParams
from jutsu_pipeline.indicators.schema import ensure_indicator_schema

__all__ = [
    "IndicatorColumns",
    "IndicatorParams",
    "compute_indicators",
    "ensure_indicator_schema",
    "indicator_frame",
]
