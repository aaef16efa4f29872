"""Strategies as a registry: each declares its params model, the indicators it reads and its signal rule.

Rules are evaluated on bar t's close, orders fill at bar t+1's open; the rules of the built-in
types are in docs/backtesting.md, how to add one in docs/extending.md.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jutsu_pipeline.indicators import IndicatorSpec

if TYPE_CHECKING:  # numpy loads with the first signal evaluated: reading the configuration needs only the params
    import numpy as np

#: FractionalBacktest's default unit: fractional mode trades whole multiples of 1e-8 shares.
FRACTIONAL_UNIT = 1 / 100e6


@dataclass(frozen=True)
class Bars:
    """What a signal rule sees: flat arrays over every symbol (sorted by symbol, ts)."""

    open: np.ndarray
    close: np.ndarray
    first: np.ndarray  # bool: the bar is its symbol's first
    inputs: Mapping[str, np.ndarray]  # the strategy's indicator inputs by role, NaN before their lookback

    def previous(self, values: np.ndarray) -> np.ndarray:
        """values[t-1] within the same symbol (NaN on a symbol's first bar)."""
        import numpy as np

        out = np.empty_like(values, dtype=np.float64)
        out[1:], out[:1] = values[:-1], np.nan
        out[self.first] = np.nan
        return out

    def crossover(self, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
        """``backtesting.lib.crossover(a, b)`` on every bar: a[t-1] < b[t-1] and a[t] > b[t]."""
        import numpy as np

        a_now, b_now = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float), self.close)[:2]
        return (self.previous(a_now) < self.previous(b_now)) & (a_now > b_now)


@dataclass(frozen=True)
class Strategy:
    """A strategy type: ``params`` validates the config's ``params``; ``inputs(params)`` names the
    indicator outputs it reads by role; ``signal(params, bars)`` returns (entry, exit) per bar."""

    type: str
    params: builtins.type[BaseModel]  # `type` is the field above inside this class body
    inputs: Callable[[Any], Mapping[str, tuple[IndicatorSpec, str]]]
    signal: Callable[[Any, Bars], tuple[np.ndarray, np.ndarray]]


STRATEGIES: dict[str, Strategy] = {}


def register_strategy(strategy: Strategy) -> Strategy:
    """Make ``strategy.type`` usable in configs (the type must be new)."""
    if strategy.type in STRATEGIES:
        raise ValueError(f"strategy type {strategy.type!r} is already registered")
    STRATEGIES[strategy.type] = strategy
    return strategy


class Params(BaseModel):
    """Base of strategy params models: unknown keys and mutation are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SmaCrossParams(Params):
    fast: Annotated[int, Field(ge=2)]
    slow: Annotated[int, Field(ge=2)]

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SmaCrossParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be < slow ({self.slow})")
        return self


class RsiReversionParams(Params):
    period: Annotated[int, Field(ge=2)] = 14
    lower: Annotated[float, Field(gt=0, lt=100)] = 30.0
    upper: Annotated[float, Field(gt=0, lt=100)] = 70.0

    @model_validator(mode="after")
    def _lower_below_upper(self) -> RsiReversionParams:
        if self.lower >= self.upper:
            raise ValueError(f"lower ({self.lower}) must be < upper ({self.upper})")
        return self


class BollingerReversionParams(Params):
    period: Annotated[int, Field(ge=2)] = 20
    nbdev: Annotated[float, Field(gt=0)] = 2.0


def _bbands(p: BollingerReversionParams) -> IndicatorSpec:
    return IndicatorSpec.of("bbands", period=p.period, stdev=p.nbdev)


register_strategy(Strategy(
    "sma_cross", SmaCrossParams,
    inputs=lambda p: {"fast": (IndicatorSpec.of("sma", period=p.fast), "sma"),
                      "slow": (IndicatorSpec.of("sma", period=p.slow), "sma")},
    signal=lambda p, b: (b.crossover(b.inputs["fast"], b.inputs["slow"]),
                         b.crossover(b.inputs["slow"], b.inputs["fast"])),
))
register_strategy(Strategy(
    "rsi_reversion", RsiReversionParams,
    inputs=lambda p: {"rsi": (IndicatorSpec.of("rsi", period=p.period), "rsi")},
    signal=lambda p, b: (b.crossover(p.lower, b.inputs["rsi"]), b.crossover(b.inputs["rsi"], p.upper)),
))
register_strategy(Strategy(
    "bollinger_reversion", BollingerReversionParams,
    inputs=lambda p: {"middle": (_bbands(p), "bb_middle"), "lower": (_bbands(p), "bb_lower")},
    signal=lambda p, b: (b.close < b.inputs["lower"], b.close >= b.inputs["middle"]),
))


class StrategyConfig(BaseModel):
    """One strategy of the config's ``strategies`` list; ``params`` is validated against ``type``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)]
    type: str
    params: dict[str, Any] = Field(default_factory=dict)
    sizing: Literal["all_in"] = "all_in"
    fractional: bool = False
    commission_bps: Annotated[float, Field(ge=0, lt=1000)] = 0.0
    initial_cash: Annotated[float, Field(gt=0)] = 10_000.0

    @field_validator("type")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in STRATEGIES:
            raise ValueError(f"unknown strategy type {value!r}; registered: {', '.join(sorted(STRATEGIES))}")
        return value

    @field_validator("params")
    @classmethod
    def _params_match_type(cls, value: dict[str, Any], info: Any) -> dict[str, Any]:
        kind = info.data.get("type")
        if kind is None:  # `type` itself is invalid; pydantic reports that error
            return value
        try:
            parsed = STRATEGIES[kind].params.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(
                f"params.{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
            )
            raise ValueError(f"invalid params for {kind}: {problems}") from None
        return parsed.model_dump()

    @property
    def strategy(self) -> Strategy:
        return STRATEGIES[self.type]

    @property
    def typed_params(self) -> BaseModel:
        """``params`` as the typed model of this strategy's ``type``."""
        return self.strategy.params.model_validate(self.params)

    def inputs(self) -> dict[str, tuple[IndicatorSpec, str]]:
        """Indicator outputs this strategy reads, by role: (spec, output name)."""
        return dict(self.strategy.inputs(self.typed_params))

    def input_columns(self) -> dict[str, str]:
        """Column of the ``indicators`` table for each role, e.g. {"fast": "sma_10", "slow": "sma_30"}."""
        return {role: spec.column(output) for role, (spec, output) in self.inputs().items()}

    def indicator_specs(self) -> list[IndicatorSpec]:
        return list(dict.fromkeys(spec for spec, _ in self.inputs().values()))

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
