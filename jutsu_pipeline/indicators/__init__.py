"""Technical indicators over DuckDB bars, computed by TA-Lib from one registry (see docs/indicators.md)."""

from jutsu_pipeline.indicators.compute import compute_indicators, ensure_indicator_schema
from jutsu_pipeline.indicators.frame import indicator_frame
from jutsu_pipeline.indicators.params import IndicatorParams
from jutsu_pipeline.indicators.registry import INDICATORS, Indicator, IndicatorSpec, Param, register

__all__ = [
    "INDICATORS",
    "Indicator",
    "IndicatorSpec",
    "Param",
    "register",
    "IndicatorParams",
    "compute_indicators",
    "ensure_indicator_schema",
    "indicator_frame",
]
