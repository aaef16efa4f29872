"""The outcome of one asset check over the stored bars as plain values (the Dagster layer renders them)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from jutsu_pipeline.config import Profile
from jutsu_pipeline.quality.profiles import Severity
from jutsu_pipeline.quality.rules import RULES, relax_hint

MAX_OFFENDERS = 10  # rows of the worst-offenders table
MAX_SAMPLES = 10  # sample rows shown
MAX_JSON_SYMBOLS = 200  # symbols in the per-symbol JSON

PER_SYMBOL_SCHEMA = {"symbol": pl.String, "rule": pl.String, "count": pl.Int64, "examples": pl.String}


class Markdown(str):
    """Text to show as markdown."""


MetadataValue = int | float | str | Markdown | dt.datetime | dict


def empty_per_symbol() -> pl.DataFrame:
    return pl.DataFrame(schema=PER_SYMBOL_SCHEMA)


@dataclass
class CheckReport:
    """Failing-row counts of one check's rules, overall and per symbol, with sample rows."""

    check: str
    rules: tuple[str, ...]
    rows_checked: int
    symbols_checked: int
    per_symbol: pl.DataFrame = field(default_factory=empty_per_symbol)  # symbol, rule, count (> 0), examples
    samples: pl.DataFrame | None = None  # a few offending rows (any columns)
    extra: dict[str, MetadataValue] = field(default_factory=dict)  # check-specific metadata
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        """Failures per rule, zeros included (one plottable series per rule)."""
        totals = dict(self.per_symbol.group_by("rule").agg(pl.col("count").sum()).iter_rows())
        return {rule: int(totals.get(rule, 0)) for rule in self.rules}

    @property
    def failures(self) -> int:
        return sum(self.counts.values())

    @property
    def passed(self) -> bool:
        return self.failures == 0

    def severity(self, profile: Profile) -> Severity:
        """ERROR if any failing rule is an error under the profile, else WARNING."""
        failing = (rule for rule, count in self.counts.items() if count)
        return Severity.ERROR if any(RULES[r].severity(profile) is Severity.ERROR for r in failing) else Severity.WARNING

    def summary(self, profile: Profile) -> str:
        if self.passed and not self.rows_checked:
            return f"{self.check}: nothing to check, no stored bars in scope ({self.extra.get('scope', 'the whole stored table')})"
        if self.passed:
            return f"{self.check}: {self.rows_checked} bars of {self.symbols_checked} symbol(s) pass ({profile} profile)"
        failing = ", ".join(f"{rule}={count}" for rule, count in self.counts.items() if count)
        symbols = self.per_symbol["symbol"].n_unique()
        hint = relax_hint([r for r, n in self.counts.items() if n]) if self.severity(profile) is Severity.ERROR else ""
        return (f"{self.check}: {failing} in {symbols} symbol(s) of {self.rows_checked} bars checked "
                f"({self.severity(profile)} under the {profile} profile){hint}")

    def metadata(self, profile: Profile) -> dict[str, MetadataValue]:
        metadata: dict[str, MetadataValue] = {
            "rows_checked": self.rows_checked,
            "symbols_checked": self.symbols_checked,
            "failures": self.failures,
            "symbols_failing": self.per_symbol["symbol"].n_unique(),
            **{f"rule_{rule}": count for rule, count in self.counts.items()},
            "profile": str(profile),
            "seconds": round(self.seconds, 3),
        }
        if not self.passed:
            metadata["worst_offenders"] = Markdown(self.offenders_markdown())
            metadata["per_symbol"] = self.per_symbol_json()
        if self.samples is not None and self.samples.height:
            metadata["sample_rows"] = Markdown(markdown_table(self.samples.head(MAX_SAMPLES)))
        return {**metadata, **self.extra}

    def offenders(self) -> pl.DataFrame:
        """Symbols by failures, worst first: symbol, failures, rules (`rule: count`), examples."""
        return (
            self.per_symbol.sort("rule")
            .group_by("symbol")
            .agg(
                pl.col("count").sum().alias("failures"),
                pl.format("{}: {}", "rule", "count").str.join(", ").alias("rules"),
                pl.col("examples").drop_nulls().str.join("; ").alias("examples"),
            )
            .sort(["failures", "symbol"], descending=[True, False])
        )

    def offenders_markdown(self) -> str:
        worst = self.offenders()
        table = markdown_table(worst.head(MAX_OFFENDERS))
        if worst.height > MAX_OFFENDERS:
            table += f"\n\n… and {worst.height - MAX_OFFENDERS} more symbol(s) (see per_symbol)"
        return table

    def per_symbol_json(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for symbol, rule, count, _ in self.per_symbol.sort("symbol", "rule").iter_rows():
            if symbol in out or len(out) < MAX_JSON_SYMBOLS:
                out.setdefault(symbol, {})[rule] = int(count)
        return out


def markdown_table(frame: pl.DataFrame) -> str:
    """A small frame as a markdown table (cells stringified, pipes escaped)."""
    def cell(value: object) -> str:
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        return text.replace("|", "/").replace("\n", " ")

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.width]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines)
