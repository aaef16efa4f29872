"""Configurable indicator periods and the column names derived from them."""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

COLUMN_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MAX_PERIOD = 100_000  # TA-Lib's own upper bound for every period below
STDEV_DECIMALS = 4


class IndicatorColumns(NamedTuple):
    """Output column names, in table order."""

    sma: str
    ema: str
    rsi: str
    bb_upper: str
    bb_middle: str
    bb_lower: str
    macd: str
    macd_signal: str
    macd_hist: str
    atr: str
    stoch_k: str
    stoch_d: str
    obv: str


def format_number(value: float) -> str:
    """Column-name form of a multiplier: 2.0 -> '2', 2.5 -> '2_5', 0.25 -> '0_25'."""
    text = f"{value:.{STDEV_DECIMALS}f}".rstrip("0").rstrip(".")
    return text.replace(".", "_")


class IndicatorParams(BaseModel):
    """Periods of every indicator (TA-Lib's parameter ranges); defaults are the issue's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sma_period: int = Field(20, ge=2, le=MAX_PERIOD)
    ema_period: int = Field(20, ge=2, le=MAX_PERIOD)
    rsi_period: int = Field(14, ge=2, le=MAX_PERIOD)
    bbands_period: int = Field(20, ge=2, le=MAX_PERIOD)
    bbands_stdev: float = Field(2.0, gt=0.0, le=100.0)
    macd_fast: int = Field(12, ge=2, le=MAX_PERIOD)
    macd_slow: int = Field(26, ge=2, le=MAX_PERIOD)
    macd_signal: int = Field(9, ge=1, le=MAX_PERIOD)
    atr_period: int = Field(14, ge=1, le=MAX_PERIOD)
    stoch_fastk: int = Field(5, ge=1, le=MAX_PERIOD)
    stoch_slowk: int = Field(3, ge=1, le=MAX_PERIOD)
    stoch_slowd: int = Field(3, ge=1, le=MAX_PERIOD)

    @field_validator("bbands_stdev")
    @classmethod
    def _stdev_nameable(cls, value: float) -> float:
        if not math.isfinite(value) or round(value, STDEV_DECIMALS) != value:
            raise ValueError(f"bbands_stdev must be finite with at most {STDEV_DECIMALS} decimals, got {value!r}")
        return value

    @model_validator(mode="after")
    def _macd_ordered(self) -> IndicatorParams:
        if self.macd_fast >= self.macd_slow:
            raise ValueError(f"macd_fast ({self.macd_fast}) must be below macd_slow ({self.macd_slow})")
        return self

    def columns(self) -> IndicatorColumns:
        """Column names, e.g. sma_20, bb_upper_20_2 (stdev 2.5 -> bb_upper_20_2_5), stoch_k_5_3_3, obv."""
        bb = f"{self.bbands_period}_{format_number(self.bbands_stdev)}"
        macd = f"{self.macd_fast}_{self.macd_slow}_{self.macd_signal}"
        stoch = f"{self.stoch_fastk}_{self.stoch_slowk}_{self.stoch_slowd}"
        names = IndicatorColumns(
            sma=f"sma_{self.sma_period}",
            ema=f"ema_{self.ema_period}",
            rsi=f"rsi_{self.rsi_period}",
            bb_upper=f"bb_upper_{bb}",
            bb_middle=f"bb_middle_{bb}",
            bb_lower=f"bb_lower_{bb}",
            macd=f"macd_{macd}",
            macd_signal=f"macd_signal_{macd}",
            macd_hist=f"macd_hist_{macd}",
            atr=f"atr_{self.atr_period}",
            stoch_k=f"stoch_k_{stoch}",
            stoch_d=f"stoch_d_{stoch}",
            obv="obv",
        )
        for name in names:  # they are formatted into SQL, so check them once more
            if not COLUMN_PATTERN.match(name):
                raise ValueError(f"invalid indicator column name {name!r}")
        return names

    def column_names(self) -> tuple[str, ...]:
        """The indicator column names in table order."""
        return tuple(self.columns())

    def lookbacks(self) -> dict[str, int]:
        """TA-Lib lookback per column: the number of leading NULL bars (= first valid bar index)."""
        c = self.columns()
        stoch = (self.stoch_fastk - 1) + (self.stoch_slowk - 1) + (self.stoch_slowd - 1)
        macd = (self.macd_slow - 1) + (self.macd_signal - 1)
        bb = self.bbands_period - 1
        return {
            c.sma: self.sma_period - 1,
            c.ema: self.ema_period - 1,
            c.rsi: self.rsi_period,
            c.bb_upper: bb,
            c.bb_middle: bb,
            c.bb_lower: bb,
            c.macd: macd,
            c.macd_signal: macd,
            c.macd_hist: macd,
            c.atr: self.atr_period,
            c.stoch_k: stoch,
            c.stoch_d: stoch,
            c.obv: 0,
        }
