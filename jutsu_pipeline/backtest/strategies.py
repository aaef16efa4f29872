"""Strategies as data: validated configuration and the rule each strategy type trades.

Rules (evaluated on bar t's close, orders fill at bar t+1's open; see docs/backtesting.md):

- ``sma_cross``: enter when SMA(fast) crosses above SMA(slow), exit when it crosses below. A cross
  is strict on both bars, exactly ``backtesting.lib.crossover``: ``fast[t-1] < slow[t-1] and
  fast[t] > slow[t]`` (a tie on either bar is no cross).
- ``rsi_reversion``: enter when RSI(period) crosses below ``lower`` (``rsi[t-1] > lower and
  rsi[t] < lower``), exit when it crosses above ``upper`` (``rsi[t-1] < upper and rsi[t] > upper``).
- ``bollinger_reversion``: enter when ``close[t] < lower band``, exit when ``close[t] >= middle
  band`` (level conditions, re-evaluated on every bar).

Entries only act when flat and exits only when long; an entry signal takes precedence on a bar
carrying both.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

StrategyType = Literal["sma_cross", "rsi_reversion", "bollinger_reversion"]

#: FractionalBacktest's default unit: fractional mode trades whole multiples of 1e-8 shares.
FRACTIONAL_UNIT = 1 / 100e6


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmaCrossParams(_Params):
    fast: Annotated[int, Field(ge=1)]
    slow: Annotated[int, Field(ge=2)]

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SmaCrossParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be < slow ({self.slow})")
        return self


class RsiReversionParams(_Params):
    period: Annotated[int, Field(ge=2)] = 14
    lower: Annotated[float, Field(gt=0, lt=100)] = 30.0
    upper: Annotated[float, Field(gt=0, lt=100)] = 70.0

    @model_validator(mode="after")
    def _lower_below_upper(self) -> RsiReversionParams:
        if self.lower >= self.upper:
            raise ValueError(f"lower ({self.lower}) must be < upper ({self.upper})")
        return self


class BollingerReversionParams(_Params):
    period: Annotated[int, Field(ge=2)] = 20
    nbdev: Annotated[float, Field(gt=0)] = 2.0


PARAMS_MODELS: dict[str, type[_Params]] = {
    "sma_cross": SmaCrossParams,
    "rsi_reversion": RsiReversionParams,
    "bollinger_reversion": BollingerReversionParams,
}


class StrategyConfig(BaseModel):
    """One strategy of the config's ``strategies`` list; ``params`` is validated against ``type``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)]
    type: StrategyType
    params: dict[str, Any] = Field(default_factory=dict)
    sizing: Literal["all_in"] = "all_in"
    fractional: bool = False
    commission_bps: Annotated[float, Field(ge=0, lt=1000)] = 0.0
    initial_cash: Annotated[float, Field(gt=0)] = 10_000.0

    @field_validator("params")
    @classmethod
    def _params_match_type(cls, value: dict[str, Any], info: Any) -> dict[str, Any]:
        kind = info.data.get("type")
        if kind is None:  # `type` itself is invalid; pydantic reports that error
            return value
        try:
            parsed = PARAMS_MODELS[kind].model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(
                f"params.{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
            )
            raise ValueError(f"invalid params for {kind}: {problems}") from None
        return parsed.model_dump()

    @property
    def typed_params(self) -> _Params:
        """``params`` as the typed model of this strategy's ``type``."""
        return PARAMS_MODELS[self.type].model_validate(self.params)

    @property
    def commission_rate(self) -> float:
        """Commission per side as a fraction of traded value (``commission_bps / 10_000``)."""
        return self.commission_bps / 10_000

    @property
    def unit(self) -> float:
        """Smallest tradable quantity: 1 share, or ``FRACTIONAL_UNIT`` shares when fractional."""
        return FRACTIONAL_UNIT if self.fractional else 1.0

    def params_json(self) -> str:
        """Canonical JSON of everything that defines this strategy's results except the bars."""
        return json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"))
