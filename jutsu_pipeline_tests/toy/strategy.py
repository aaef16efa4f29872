"""A toy strategy: buy when Williams' %R crosses below `oversold`, sell when it crosses above `overbought`."""

from jutsu_pipeline.backtest.strategies import Params, Strategy, register_strategy
from jutsu_pipeline.indicators import IndicatorSpec


class WillrParams(Params):
    period: int = 14
    oversold: float = -80.0
    overbought: float = -20.0


WILLR_REVERSION = register_strategy(Strategy(
    "willr_reversion", WillrParams,
    inputs=lambda p: {"willr": (IndicatorSpec.of("willr", period=p.period), "willr")},
    signal=lambda p, bars: (bars.crossover(p.oversold, bars.inputs["willr"]),
                            bars.crossover(bars.inputs["willr"], p.overbought)),
))
