"""TA-Lib's function names (`talib.get_functions()` of the version below), so that registering an indicator
checks its function without importing TA-Lib (which imports pandas and polars when they are installed):
reading the configuration needs only the registry. Another installed version is asked directly;
`test_indicators.py` pins this table to the library."""

from __future__ import annotations

from jutsu_pipeline.lazy import installed_version

TALIB_VERSION = "0.8.2"

TALIB_FUNCTIONS = frozenset((
    "AC", "ACCBANDS", "ACOS", "AD", "ADD", "ADOSC", "ADR", "ADX", "ADXR", "AO", "APO", "AROON", "AROONOSC", "ASIN",
    "ATAN", "ATR", "AVGDEV", "AVGPRICE", "BBANDS", "BETA", "BOP", "CCI", "CDL2CROWS", "CDL3BLACKCROWS",
    "CDL3INSIDE", "CDL3LINESTRIKE", "CDL3OUTSIDE", "CDL3STARSINSOUTH", "CDL3WHITESOLDIERS", "CDLABANDONEDBABY",
    "CDLADVANCEBLOCK", "CDLBELTHOLD", "CDLBREAKAWAY", "CDLCLOSINGMARUBOZU", "CDLCONCEALBABYSWALL",
    "CDLCOUNTERATTACK", "CDLDARKCLOUDCOVER", "CDLDOJI", "CDLDOJISTAR", "CDLDRAGONFLYDOJI", "CDLENGULFING",
    "CDLEVENINGDOJISTAR", "CDLEVENINGSTAR", "CDLGAPSIDESIDEWHITE", "CDLGRAVESTONEDOJI", "CDLHAMMER",
    "CDLHANGINGMAN", "CDLHARAMI", "CDLHARAMICROSS", "CDLHIGHWAVE", "CDLHIKKAKE", "CDLHIKKAKEMOD", "CDLHOMINGPIGEON",
    "CDLIDENTICAL3CROWS", "CDLINNECK", "CDLINVERTEDHAMMER", "CDLKICKING", "CDLKICKINGBYLENGTH", "CDLLADDERBOTTOM",
    "CDLLONGLEGGEDDOJI", "CDLLONGLINE", "CDLMARUBOZU", "CDLMATCHINGLOW", "CDLMATHOLD", "CDLMORNINGDOJISTAR",
    "CDLMORNINGSTAR", "CDLONNECK", "CDLPIERCING", "CDLRICKSHAWMAN", "CDLRISEFALL3METHODS", "CDLSEPARATINGLINES",
    "CDLSHOOTINGSTAR", "CDLSHORTLINE", "CDLSPINNINGTOP", "CDLSTALLEDPATTERN", "CDLSTICKSANDWICH", "CDLTAKURI",
    "CDLTASUKIGAP", "CDLTHRUSTING", "CDLTRISTAR", "CDLUNIQUE3RIVER", "CDLUPSIDEGAP2CROWS", "CDLXSIDEGAP3METHODS",
    "CEIL", "CMF", "CMO", "CMOU", "COPPOCK", "CORREL", "COS", "COSH", "CUMSUM", "CVI", "DEMA", "DIV", "DONCHIAN",
    "DPO", "DX", "EFI", "EMA", "ER", "ERI", "EXP", "FLOOR", "FOSC", "FRACTAL", "HA", "HMA", "HT_DCPERIOD",
    "HT_DCPHASE", "HT_PHASOR", "HT_SINE", "HT_TRENDLINE", "HT_TRENDMODE", "IMI", "KAMA", "KC", "KDJ", "LINEARREG",
    "LINEARREG_ANGLE", "LINEARREG_INTERCEPT", "LINEARREG_SLOPE", "LN", "LOG10", "MA", "MACD", "MACDEXT", "MACDFIX",
    "MAMA", "MARKETFI", "MASSI", "MAVP", "MAX", "MAXINDEX", "MEDPRICE", "MFI", "MIDPOINT", "MIDPRICE", "MIN",
    "MININDEX", "MINMAX", "MINMAXINDEX", "MINUS_DI", "MINUS_DM", "MOM", "MULT", "NATR", "NVI", "OBV", "PERCENTILE",
    "PERCENTRANK", "PLUS_DI", "PLUS_DM", "PPO", "PVI", "PVO", "PVT", "QSTICK", "RMA", "ROC", "ROCP", "ROCR",
    "ROCR100", "RSI", "RVI", "RVOL", "SAR", "SAREXT", "SIN", "SINH", "SMA", "SMI", "SQRT", "STDDEV", "STOCH",
    "STOCHF", "STOCHRSI", "SUB", "SUM", "SUPERTREND", "T3", "TAN", "TANH", "TEMA", "TRANGE", "TRIMA", "TRIX", "TSF",
    "TSI", "TYPPRICE", "ULTOSC", "VAR", "VHF", "VORTEX", "VWAP", "VWMA", "WAD", "WCLPRICE", "WILLR", "WMA", "ZLEMA"
))


def talib_has(function: str) -> bool:
    """TA-Lib has a function of this name (the table above when the installed TA-Lib is its version)."""
    if installed_version("ta-lib") == TALIB_VERSION:
        return function in TALIB_FUNCTIONS
    import talib

    return function in talib.get_functions()
