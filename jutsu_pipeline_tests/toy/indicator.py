"""A toy indicator: Williams' %R, TA-Lib's WILLR over `period` bars."""

from jutsu_pipeline.indicators import Indicator, Param, register

WILLR = register(Indicator("willr", "WILLR", ("high", "low", "close"), ("willr",),
                           {"period": Param(14, ("timeperiod",), ge=2)}))
