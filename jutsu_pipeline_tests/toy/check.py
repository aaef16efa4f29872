"""A toy check: no stored close above the market's price cap."""

from __future__ import annotations

import polars as pl

from jutsu_pipeline.quality.checks import Check, CheckInputs, register
from jutsu_pipeline.quality.profiles import RuleClass
from jutsu_pipeline.quality.report import CheckReport
from jutsu_pipeline.quality.rules import Rule, add_rule
from jutsu_pipeline.quality.stored import flag_rows, load_bars

PRICE_CAP = 1000.0
add_rule(Rule("close_below_cap", RuleClass.SUSPICIOUS, f"close <= {PRICE_CAP:g}"))


def evaluate(inputs: CheckInputs) -> CheckReport:
    frame = load_bars(inputs.con, inputs.partitioning)  # the asset's stored bars, sorted by symbol and ts
    report = CheckReport("price_cap", PRICE_CAP_CHECK.rules, frame.height, frame["symbol"].n_unique())
    flags = {"close_below_cap": pl.col("close") <= PRICE_CAP}
    report.per_symbol, report.samples = flag_rows(frame, flags, "%Y-%m-%d")
    return report


PRICE_CAP_CHECK = register(Check(
    "price_cap", ("close_below_cap",), f"No stored close above {PRICE_CAP:g}.", evaluate,
    applies=lambda market: market.provider == "toy_walk"))
