"""Technical indicators over DuckDB bars, computed by TA-Lib from one registry (see docs/indicators.md).

Names load on first use, so reading the configuration (which needs only the registry and the parameter
model) does not import the DuckDB computation and the storage layer.
"""

from __future__ import annotations

from jutsu_pipeline.lazy import lazy_names

_WHERE = {
    "INDICATORS": "registry", "Indicator": "registry", "IndicatorSpec": "registry", "Param": "registry",
    "register": "registry", "IndicatorParams": "params", "compute_indicators": "compute",
    "ensure_indicator_schema": "compute", "indicator_frame": "frame",
}
__all__ = list(_WHERE)
__getattr__ = lazy_names(__name__, _WHERE)
