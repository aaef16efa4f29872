"""A market's `indicators:` config: flat keys `<indicator>_<param>` over the registry (`sma_period: 20`)."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from jutsu_pipeline.indicators.registry import BUILTIN, INDICATORS, IndicatorSpec


def _split_key(key: str) -> tuple[str, str]:
    for name, indicator in INDICATORS.items():
        param = key.removeprefix(f"{name}_")
        if param != key and param in indicator.params:
            return name, param
    known = sorted(f"{n}_{p}" for n, i in INDICATORS.items() for p in i.params)
    raise ValueError(f"unknown indicator parameter {key!r}; known: {', '.join(known)}")


class IndicatorParams(BaseModel):
    """Every built-in indicator with its defaults, overridden (and other registered ones added) by key."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _validate(cls, data: Any) -> dict[str, Any]:
        chosen: dict[str, dict[str, object]] = {i.name: {} for i in BUILTIN}
        for key, value in dict(data or {}).items():
            name, param = _split_key(key)
            chosen.setdefault(name, {})[param] = value
        return {f"{name}_{param}": value for name, values in chosen.items()
                for param, value in INDICATORS[name].validate(values, prefix=f"{name}_").items()}

    def specs(self) -> tuple[IndicatorSpec, ...]:
        """The configured indicators with their values, in registry order."""
        values = self.model_dump()
        chosen = [name for name in INDICATORS if name in {i.name for i in BUILTIN}
                  or any(key.startswith(f"{name}_") for key in values)]
        return tuple(IndicatorSpec(name, tuple((p, values[f"{name}_{p}"]) for p in INDICATORS[name].params))
                     for name in chosen)

    def columns(self):  # noqa: ANN201 - a namedtuple built from the registry's output names
        """Column names by output name, e.g. `.sma == "sma_20"`, `.bb_upper == "bb_upper_20_2"`."""
        outputs = tuple(o for spec in self.specs() for o in spec.indicator.outputs)
        return namedtuple("IndicatorColumns", outputs)(*self.column_names())  # noqa: PYI024

    def column_names(self) -> tuple[str, ...]:
        """The indicator column names in table order."""
        return tuple(column for spec in self.specs() for column in spec.columns())

    def lookbacks(self) -> dict[str, int]:
        """TA-Lib lookback per column: the number of leading NULL bars (= first valid bar index)."""
        return {column: spec.lookback() for spec in self.specs() for column in spec.columns()}


def as_specs(params: IndicatorParams | Iterable[IndicatorSpec]) -> tuple[IndicatorSpec, ...]:
    """The specs of a config block or a list of specs, each column computed once."""
    specs = params.specs() if isinstance(params, IndicatorParams) else tuple(params)
    seen: set[str] = set()
    unique = []
    for spec in specs:
        if not seen.issuperset(spec.columns()):
            unique.append(spec)
            seen.update(spec.columns())
    return tuple(unique)


def column_names(specs: Iterable[IndicatorSpec]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for spec in specs for c in spec.columns()))
