"""The indicator registry, the one declaration of every indicator: a TA-Lib function, its
parameters and output columns. Config keys, column names, lookbacks and the table's columns derive
from it (docs/extending.md)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jutsu_pipeline.indicators.talib_functions import talib_has
from jutsu_pipeline.storage.identifiers import IDENTIFIER

if TYPE_CHECKING:
    import numpy as np

MAX_PERIOD = 100_000  # TA-Lib's own upper bound for every period
DECIMALS = 4  # multipliers appear in column names: 2.5 -> "2_5"


@dataclass(frozen=True)
class Param:
    """One parameter: its default, bounds and the TA-Lib keyword(s) that receive it."""

    default: int | float
    talib: tuple[str, ...]
    ge: float | None = None
    gt: float | None = None
    le: float = MAX_PERIOD

    def validate(self, key: str, value: object) -> int | float:
        """The value as the default's type, or ValueError naming `key` and the rule."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{key} must be a number, got {value!r}")
        if isinstance(self.default, int):
            if value != int(value):
                raise ValueError(f"{key} must be a whole number, got {value!r}")
            value = int(value)
        elif not math.isfinite(value) or round(value, DECIMALS) != value:
            raise ValueError(f"{key} must be finite with at most {DECIMALS} decimals, got {value!r}")
        if (self.ge is not None and value < self.ge) or (self.gt is not None and value <= self.gt) or value > self.le:
            low = f">= {self.ge}" if self.ge is not None else f"> {self.gt}"
            raise ValueError(f"{key} must be {low} and <= {self.le}, got {value!r}")
        return float(value) if isinstance(self.default, float) else value


def format_number(value: float) -> str:
    """Column-name form of a parameter: 20 -> '20', 2.0 -> '2', 2.5 -> '2_5', 0.25 -> '0_25'."""
    return f"{value:.{DECIMALS}f}".rstrip("0").rstrip(".").replace(".", "_")


#: A recursive indicator's warm-up leaves at most this share of its seed's weight in any recomputed value.
DECAY = 1e-12


def memory(alpha: float) -> int:
    """Bars k after which a recursive average with smoothing `alpha` (EMA 2/(n+1), Wilder 1/n) keeps at
    most DECAY of its starting value's weight: (1 - alpha)^k <= DECAY."""
    return math.ceil(math.log(DECAY) / math.log1p(-alpha))


def windowed(values: Mapping[str, float]) -> int:
    """Warm-up of an indicator whose value at bar t depends on its lookback window only (SMA, BBANDS, STOCH)."""
    return 0


@dataclass(frozen=True)
class Indicator:
    """TA-Lib's `function` over `inputs`; a column per output named `<output>_<param values>`
    (`bb_upper_20_2`, `obv`). `fixed`: TA-Lib arguments users cannot set; `check`: cross-parameter rule.

    `warmup`: bars beyond the lookback an incremental run recomputes before the first new bar so that
    its values equal a full-history run (windowed: 0; recursive: `memory(alpha)`); None (the default)
    recomputes the whole history. `cumulative`: outputs are running totals from the first bar (OBV),
    continued from the stored value of the bar before the new ones."""

    name: str
    function: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: Mapping[str, Param] = field(default_factory=dict)
    fixed: Mapping[str, int] = field(default_factory=dict)
    check: Callable[[Mapping[str, float]], None] | None = None
    warmup: Callable[[Mapping[str, float]], int] | None = None
    cumulative: bool = False

    def validate(self, values: Mapping[str, object], prefix: str = "") -> dict[str, int | float]:
        """Defaults completed by validated `values` (unknown keys are errors)."""
        unknown = set(values) - set(self.params)
        if unknown:
            raise ValueError(f"{self.name} has no parameter(s) {sorted(prefix + k for k in unknown)}; "
                             f"known: {sorted(prefix + k for k in self.params)}")
        out = {key: p.validate(prefix + key, values.get(key, p.default)) for key, p in self.params.items()}
        if self.check:
            self.check(out)
        return out


INDICATORS: dict[str, Indicator] = {}


def register(indicator: Indicator) -> Indicator:
    """Make `indicator` available to configs and strategies (its name must be new)."""
    if indicator.name in INDICATORS:
        raise ValueError(f"indicator {indicator.name!r} is already registered")
    if not all(IDENTIFIER.match(n) for n in (indicator.name, *indicator.outputs)):
        raise ValueError(f"indicator and output names must match {IDENTIFIER.pattern}: {indicator}")
    if not talib_has(indicator.function):
        raise ValueError(f"TA-Lib has no function {indicator.function!r} (indicator {indicator.name!r}); "
                         "use one of talib.get_functions(), e.g. 'SMA'")
    INDICATORS[indicator.name] = indicator
    return indicator


def _macd_ordered(values: Mapping[str, float]) -> None:
    if values["fast"] >= values["slow"]:
        raise ValueError(f"macd_fast ({values['fast']}) must be below macd_slow ({values['slow']})")


def _ema(values: Mapping[str, float]) -> int:
    return memory(2 / (values["period"] + 1))


def _wilder(values: Mapping[str, float]) -> int:
    return memory(1 / values["period"])


def _macd(values: Mapping[str, float]) -> int:
    # The signal EMA smooths a line whose own error decays with the slower EMA: both memories, in series.
    return memory(2 / (max(values["fast"], values["slow"]) + 1)) + memory(2 / (values["signal"] + 1))


def _period(default: int, ge: int = 2, keyword: str = "timeperiod") -> Param:
    return Param(default, (keyword,), ge=ge)


CLOSE, HLC = ("close",), ("high", "low", "close")
BUILTIN = tuple(register(i) for i in (
    Indicator("sma", "SMA", CLOSE, ("sma",), {"period": _period(20)}, warmup=windowed),
    Indicator("ema", "EMA", CLOSE, ("ema",), {"period": _period(20)}, warmup=_ema),
    Indicator("rsi", "RSI", CLOSE, ("rsi",), {"period": _period(14)}, warmup=_wilder),
    Indicator("bbands", "BBANDS", CLOSE, ("bb_upper", "bb_middle", "bb_lower"),
              {"period": _period(20), "stdev": Param(2.0, ("nbdevup", "nbdevdn"), gt=0.0, le=100.0)},
              fixed={"matype": 0}, warmup=windowed),
    Indicator("macd", "MACD", CLOSE, ("macd", "macd_signal", "macd_hist"),
              {"fast": _period(12, keyword="fastperiod"), "slow": _period(26, keyword="slowperiod"),
               "signal": _period(9, 1, "signalperiod")}, check=_macd_ordered, warmup=_macd),
    Indicator("atr", "ATR", HLC, ("atr",), {"period": _period(14, 1)}, warmup=_wilder),
    Indicator("stoch", "STOCH", HLC, ("stoch_k", "stoch_d"),
              {"fastk": _period(5, 1, "fastk_period"), "slowk": _period(3, 1, "slowk_period"),
               "slowd": _period(3, 1, "slowd_period")}, fixed={"slowk_matype": 0, "slowd_matype": 0},
              warmup=windowed),
    Indicator("obv", "OBV", ("close", "volume"), ("obv",), warmup=windowed, cumulative=True),
))


@dataclass(frozen=True)
class IndicatorSpec:
    """One registered indicator with validated parameter values (hashable; what gets computed)."""

    name: str
    values: tuple[tuple[str, int | float], ...] = ()

    @classmethod
    def of(cls, name: str, **values: float) -> IndicatorSpec:
        """E.g. `IndicatorSpec.of("sma", period=10)`; unknown names or bad values raise ValueError."""
        if name not in INDICATORS:
            raise ValueError(f"unknown indicator {name!r}; registered: {sorted(INDICATORS)}")
        return cls(name, tuple(INDICATORS[name].validate(values).items()))

    @property
    def indicator(self) -> Indicator:
        return INDICATORS[self.name]

    def kwargs(self) -> dict[str, float]:
        values, indicator = dict(self.values), self.indicator
        return {**indicator.fixed, **{kw: values[key] for key, p in indicator.params.items() for kw in p.talib}}

    def columns(self) -> tuple[str, ...]:
        values = dict(self.values)
        suffix = "".join(f"_{format_number(values[key])}" for key in self.indicator.params)
        names = tuple(f"{output}{suffix}" for output in self.indicator.outputs)
        bad = [n for n in names if not IDENTIFIER.match(n)]  # formatted into DDL
        if bad:
            raise ValueError(f"invalid indicator column name(s) {bad}")
        return names

    def column(self, output: str) -> str:
        """The column of one output, e.g. `column("bb_lower")` -> `bb_lower_20_2`."""
        return self.columns()[self.indicator.outputs.index(output)]

    def lookback(self) -> int:
        """TA-Lib's lookback: the number of leading NULL bars of every output."""
        from talib import abstract  # here, not at import: reading the configuration needs no TA-Lib

        function = abstract.Function(self.indicator.function)  # type: ignore[attr-defined]  # missing from TA-Lib's abstract.pyi
        function.set_parameters(self.kwargs())
        return int(function.lookback)

    def warmup_bars(self) -> int | None:
        """Bars before the first new one an incremental run recomputes (None: the whole history); at
        least one, the bar a cumulative output continues from."""
        warmup = self.indicator.warmup
        return None if warmup is None else max(1, self.lookback() + warmup(dict(self.values)))

    def function(self) -> Callable[..., tuple[np.ndarray, ...]]:
        """TA-Lib's function with the values bound: the `inputs` arrays in, a tuple of every output out."""
        import talib

        function, kwargs = getattr(talib, self.indicator.function), self.kwargs()
        return lambda *arrays: out if isinstance(out := function(*arrays, **kwargs), tuple) else (out,)
