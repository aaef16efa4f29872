"""The jutsu.yaml configuration: markets, symbols, timeframes, storage; validated with pydantic."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import re
import warnings
from collections.abc import Iterator
from difflib import get_close_matches
from enum import StrEnum
from functools import reduce
from operator import getitem
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from jutsu_pipeline.backtest.strategies import STRATEGIES, StrategyConfig
from jutsu_pipeline.calendars import ALWAYS_OPEN, known_calendar
from jutsu_pipeline.configfile import (  # noqa: F401 - re-exported: the configuration's public names
    CONFIG_ENV_VAR,
    DEFAULT_CONFIG_PATH,
    REPO_ROOT,
    ConfigError,
    config_path,
    lake_target,
    read_text,
    resolve_path,
    storage_alias,
)
from jutsu_pipeline.indicators.params import IndicatorParams
from jutsu_pipeline.indicators.registry import INDICATORS
from jutsu_pipeline.providers import registry as providers
from jutsu_pipeline.storage.settings import DuckDBStorage, DuckLakeStorage, StorageSettings
from jutsu_pipeline.timeframes import DEFAULT_GRAINS, PARTITION_LIMIT, Grain, Timeframe, estimate_windows

if TYPE_CHECKING:  # its module imports DuckDB and tenacity; a DuckDB-file configuration never needs them
    from jutsu_pipeline.storage.backend import LakeTarget

DAGSTER_HOME_ENV_VAR = "DAGSTER_HOME"

SYMBOL_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9.\-_/]{0,19}$")
MARKET_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class PartitionCountWarning(UserWarning):
    """An asset would have more partitions than Dagster advises (100,000)."""


class Profile(StrEnum):
    """How strictly a market's bars are judged (`quality.profile` in jutsu.yaml)."""

    STRICT = "strict"  # every rule is an error
    STANDARD = "standard"  # structural and invariant rules are errors, suspicious ones warnings
    LENIENT = "lenient"  # only structural rules are errors (providers with known quirks)


def _once(values: tuple, what: str) -> tuple:
    """`values`, or a ValueError naming those listed twice."""
    twice = sorted({str(v) for v in values if values.count(v) > 1})
    if twice:
        raise ValueError(f"{what} listed twice: {twice}")
    return values


class QualityConfig(BaseModel):
    """A market's data-quality settings (`markets.<name>.quality` in jutsu.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: Profile = Profile.STANDARD
    max_open_gap: float = Field(
        default=0.25, gt=0, description="|open / previous close - 1| above this is a price jump (0.25 = 25 %)."
    )
    min_factor_change: float = Field(
        default=0.01, gt=0, lt=1,
        description="A relative change of adj_close/close above this on a jump's bar marks a corporate action.",
    )


class AutomationConfig(BaseModel):
    """When Dagster syncs a market by itself (`markets.<name>.automation` in jutsu.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: bool = True  # the market-close (or UTC daily/hourly) schedules start RUNNING
    offset_minutes: int = Field(default=15, ge=0, le=720, description="Minutes after the regular close (or midnight UTC).")
    gap_repair: bool = True  # the gap-repair sensor starts RUNNING
    max_runs_per_tick: int = Field(default=5, ge=1, le=100)
    retry_base_minutes: float = Field(default=5.0, gt=0, description="Back-off after a failed repair run; doubles.")
    retry_max_minutes: float = Field(default=24 * 60.0, gt=0)
    # Intraday refresh of the in-progress window (tail only): every N minutes, around the clock for 24/7
    # markets and during the session otherwise. 0 turns the refresh schedule off.
    refresh_minutes: int | None = Field(default=None, ge=0, le=720,
                                        description="Default: 5 for 24/7 markets, 15 during exchange sessions.")


class MarketConfig(BaseModel):
    """One market: a provider, a calendar, timeframes, a history window and symbols."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str
    calendar: str
    timeframes: tuple[Timeframe, ...] = Field(min_length=1)
    # Timeframes computed in DuckDB from the finest fetched one (the base) instead of being fetched.
    derive: tuple[Timeframe, ...] = ()
    start: dt.date
    end: dt.date | None = None
    symbols: tuple[str, ...] = Field(min_length=1)
    # The provider's model; validated when absent too (a `files` market without `options: {path: …}` is a config error).
    options: SerializeAsAny[providers.ProviderOptions] = Field(default_factory=providers.ProviderOptions, validate_default=True)
    quality: QualityConfig = Field(default_factory=QualityConfig)  # validation profile, anomaly thresholds
    indicators: IndicatorParams = Field(default_factory=IndicatorParams)
    adjusted_prices: bool = True  # indicators and backtests read bars_adjusted; False: raw bars
    strategies: tuple[StrategyConfig, ...] = ()
    automation: AutomationConfig = Field(default_factory=AutomationConfig)  # schedules and gap repair
    currency: str | None = None  # the prices' currency, recorded with dividends inferred from adj_close
    # The `<market>/corporate_actions` asset (provider endpoint, <SYMBOL>.actions.csv); None: on for
    # providers that publish actions or read files, off for the others (binance, schwab).
    corporate_actions: bool | None = None
    # Time covered by one bars partition per timeframe (defaults: DEFAULT_GRAINS; docs/configuration.md).
    partition_grain: dict[Timeframe, Grain] = Field(default_factory=dict)
    # A tail refresh re-fetches this many bars before the last stored final bar to catch provider revisions.
    tail_overlap_bars: int = Field(default=2, ge=0, le=10_000)

    @field_validator("provider")
    @classmethod
    def _provider_known(cls, value: str) -> str:
        providers.spec(value)
        return value

    @field_validator("options", mode="before")
    @classmethod
    def _options_of_provider(cls, value: Any, info: ValidationInfo) -> providers.ProviderOptions:
        """Validated with the options model the provider registered (it is tagged by `provider`)."""
        if "provider" not in info.data:  # the provider itself is invalid: that error is reported
            return providers.ProviderOptions()
        return providers.parse_options(info.data["provider"], value)

    @field_validator("calendar")
    @classmethod
    def _calendar_known(cls, value: str) -> str:
        if not known_calendar(value):
            raise ValueError(f"unknown calendar {value!r}: use an exchange_calendars code such as XNYS, or {ALWAYS_OPEN!r}")
        return value

    @field_validator("symbols")
    @classmethod
    def _symbols_valid(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for symbol in value:
            if not SYMBOL_PATTERN.match(symbol):
                raise ValueError(f"symbol {symbol!r} does not match {SYMBOL_PATTERN.pattern} "
                                 "(upper-case letters, digits and . - _ /, at most 20 characters)")
        return _once(value, "symbols")

    @field_validator("timeframes", "derive")
    @classmethod
    def _timeframes_unique(cls, value: tuple[Timeframe, ...], info: ValidationInfo) -> tuple[Timeframe, ...]:
        return _once(value, str(info.field_name))

    @model_validator(mode="after")
    def _derivable(self) -> MarketConfig:
        base = self.base_timeframe
        for timeframe in self.derive:
            if timeframe in self.timeframes:
                raise ValueError(f"derive: {timeframe.value} is also fetched (timeframes); list it in one of them")
            if timeframe.duration <= base.duration or (
                    timeframe.is_intraday and timeframe.duration % base.duration):
                raise ValueError(f"derive: {timeframe.value} cannot be built from the base timeframe {base.value}; "
                                 f"derived timeframes must be whole multiples of it (or 1d)")
        return self

    @property
    def base_timeframe(self) -> Timeframe:
        """The finest fetched timeframe: what derived timeframes are computed from."""
        return min(self.timeframes, key=lambda t: t.duration)

    @property
    def actions_enabled(self) -> bool:
        if self.corporate_actions is not None:
            return self.corporate_actions
        return self.provider in {"sample", "files", "alpaca", "yahoo"}

    @field_validator("strategies")
    @classmethod
    def _strategy_names_unique(cls, value: tuple[StrategyConfig, ...]) -> tuple[StrategyConfig, ...]:
        _once(tuple(s.name for s in value), "strategy names")
        return value

    @model_validator(mode="after")
    def _window_ordered(self) -> MarketConfig:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    @property
    def always_open(self) -> bool:
        return self.calendar == ALWAYS_OPEN

    def grain(self, timeframe: Timeframe) -> Grain:
        """The partition grain of one timeframe (configured, else the default)."""
        return self.partition_grain.get(timeframe, DEFAULT_GRAINS[timeframe])

    def partitions_estimate(self, timeframe: Timeframe) -> int:
        """About how many partitions the timeframe's bars asset has (symbols x windows)."""
        end = self.end or dt.datetime.now(dt.timezone.utc).date()
        return len(self.symbols) * estimate_windows(self.grain(timeframe), self.start, end, self.always_open)

    def refresh_every(self) -> int:
        """Minutes between intraday tail refreshes (0: off)."""
        if self.automation.refresh_minutes is not None:
            return self.automation.refresh_minutes
        return 5 if self.always_open else 15


class JutsuConfig(BaseModel):
    """The whole configuration file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plugins: tuple[str, ...] = ()  # modules registering indicators/strategies, imported before markets validate
    storage: StorageSettings = Field(default_factory=DuckDBStorage)  # `duckdb_path: x` = {kind: duckdb, path: x}
    reports_dir: Path = Path("data/reports")  # backtest pictures and each market's report.html
    report_bars: int = Field(default=500, ge=10, le=1_000_000)  # latest bars per symbol in the HTML report's charts
    dagster_home: Path = Path("data/dagster_home")  # the Dagster instance `jutsu` records runs in
    markets: dict[str, MarketConfig] = Field(min_length=1)
    source_path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _import_plugins(cls, data: Any) -> Any:
        for module in (data.get("plugins") or ()) if isinstance(data, dict) else ():
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise ValueError(f"plugins: cannot import {module!r} ({exc}); install it or fix the name") from None
        return data

    @model_validator(mode="before")
    @classmethod
    def _duckdb_path_alias(cls, data: Any) -> Any:
        return storage_alias(data)

    @field_validator("markets")
    @classmethod
    def _market_names(cls, value: dict[str, MarketConfig]) -> dict[str, MarketConfig]:
        for name in value:
            if not MARKET_PATTERN.match(name):
                raise ValueError(f"market name {name!r} must match {MARKET_PATTERN.pattern}")
        return value

    @model_validator(mode="after")
    def _symbols_in_one_market(self) -> JutsuConfig:
        seen: dict[str, str] = {}
        for market_name, market in self.markets.items():
            for symbol in market.symbols:
                if symbol in seen:
                    raise ValueError(f"symbol {symbol} is in two markets: {seen[symbol]} and {market_name}")
                seen[symbol] = market_name
        return self

    def resolve(self, path: str | Path) -> Path:
        return resolve_path(self.source_path, path)

    @property
    def is_lake(self) -> bool:
        return isinstance(self.storage, DuckLakeStorage)

    @property
    def database(self) -> Path:
        """The DuckDB file (storage kind duckdb)."""
        if not isinstance(self.storage, DuckDBStorage):
            raise ConfigError(f"{self.source_path or 'configuration'}: storage kind is {self.storage.kind}, "
                              "there is no DuckDB file")
        return self.resolve(self.storage.path)

    def lake_target(self) -> LakeTarget:
        """The DuckLake location with relative paths resolved (storage kind ducklake)."""
        if not isinstance(self.storage, DuckLakeStorage):
            raise ConfigError(f"{self.source_path or 'configuration'}: storage kind is duckdb, not ducklake")
        return lake_target(self.source_path, self.storage)

    @property
    def instance_dir(self) -> Path:
        """The Dagster instance folder: $DAGSTER_HOME if set (relative to the working directory), else `dagster_home`."""
        from_env = os.environ.get(DAGSTER_HOME_ENV_VAR)
        return Path(from_env).expanduser().resolve() if from_env else self.resolve(self.dagster_home)


class _Loader(yaml.SafeLoader):
    """SafeLoader that leaves dates as strings: pydantic parses them and names the key of a bad one
    (PyYAML's own date constructor raises a bare `month must be in 1..12` for `start: 2012-13-01`)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _format_errors(error: ValidationError, data: Any, prefix: tuple = ()) -> list[str]:
    """One line per problem, keyed by its path in the file; an unknown key names the valid ones (and the
    closest); a mapping with unknown keys is re-checked without them, so its other problems show alone."""
    unknown = {path: (valid, model) for path, valid, model in _unknown_keys(data, JutsuConfig)}
    lines = [f"  {_dotted(path)}: unknown key{_closest(path[-1], valid)}; valid "
             f"{'top-level keys' if len(path) == 1 else f'keys of {_dotted(path[:-1])}'}: {', '.join(valid)}"
             for path, (valid, _) in unknown.items()]
    holding = {path[:-1]: model for path, (_, model) in unknown.items()}  # mappings with unknown keys
    errors = error.errors()
    for item in errors:
        loc = _raw_path(item["loc"], data) if data is not None else item["loc"]
        if item["type"] == "extra_forbidden" and loc in unknown:
            continue
        mapping = holding.get(loc)
        if item["type"] == "value_error" and mapping is not None:  # e.g. provider options, a strategy's params
            node = reduce(getitem, loc, data)
            try:
                mapping.model_validate({k: v for k, v in node.items() if loc + (k,) not in unknown})
            except ValidationError as inner:
                lines += _format_errors(inner, None, loc)
            continue
        # `timeframes: [1D]` also fails the list's min_length (its bad item was dropped): say it once
        if item["type"] == "too_short" and any(other["loc"][:len(item["loc"])] == item["loc"]
                                               and len(other["loc"]) > len(item["loc"]) for other in errors):
            continue
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "enum":
            message += f", not {item['input']!r}"
        lines.append(f"  {_dotted(prefix + loc)}: {message}")
    return lines


def _dotted(path: tuple) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def _closest(key: object, valid: list[str]) -> str:
    close = get_close_matches(str(key), valid, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _raw_path(loc: tuple, data: Any) -> tuple:
    """`loc` without the parts pydantic adds that the file does not have (a union's tag, e.g. `duckdb`)."""
    path: list = []
    for part in loc:
        if (isinstance(data, dict) and part in data) or (isinstance(data, list) and isinstance(part, int)
                                                          and part < len(data)):
            path.append(part)
            data = data[part]
    return tuple(path)


def _unknown_keys(raw: Any, annotation: Any, path: tuple = ()) -> Iterator[tuple[tuple, list[str], type[BaseModel]]]:
    """(path, the valid keys there, their model) of every key of the raw file its model does not have."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if not isinstance(raw, dict):
            return
        fields: dict[str, Any] = {field.alias or name: field.annotation
                                  for name, field in annotation.model_fields.items() if not field.exclude}
        if annotation is IndicatorParams:  # flat `<indicator>_<param>` keys over the registry
            fields = {f"{n}_{p}": Any for n, i in INDICATORS.items() for p in i.params}
        elif annotation is MarketConfig and raw.get("provider") in providers.names():
            fields["options"] = providers.spec(raw["provider"]).options
        elif annotation is StrategyConfig and raw.get("type") in STRATEGIES:
            fields["params"] = STRATEGIES[raw["type"]].params
        valid = list(fields)
        if annotation is JutsuConfig:
            fields["duckdb_path"] = Any  # the old spelling of storage: {kind: duckdb, path: ...}
        for key, value in raw.items():
            if key in fields:
                yield from _unknown_keys(value, fields[key], (*path, key))
            else:
                yield (*path, key), valid, annotation
        return
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is dict and isinstance(raw, dict):
        for key, value in raw.items():
            yield from _unknown_keys(value, args[1], (*path, key))
    elif origin is tuple and isinstance(raw, list):
        for index, value in enumerate(raw):
            yield from _unknown_keys(value, args[0], (*path, index))
    elif origin in (Union, UnionType) and isinstance(raw, dict):  # e.g. storage: the member its `kind` names
        kinds = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel) and "kind" in a.model_fields
                 and raw.get("kind", a.model_fields["kind"].default) in get_args(a.model_fields["kind"].annotation)]
        if len(kinds) == 1:
            yield from _unknown_keys(raw, kinds[0], path)


def parse_config(data: Any, source_path: Path | None = None) -> JutsuConfig:
    """Validate already-parsed YAML data; raise ConfigError naming every bad key."""
    where = str(source_path) if source_path else "configuration"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with 'markets', got {type(data).__name__}")
    try:
        config = JutsuConfig.model_validate({**data, "source_path": source_path})
    except ValidationError as error:
        problems = "\n".join(_format_errors(error, data))
        raise ConfigError(f"{where} is invalid:\n{problems}") from None
    warn_partition_counts(config, where)
    return config


def warn_partition_counts(config: JutsuConfig, where: str) -> None:
    """Warn, with the number, for each bars asset above Dagster's advised 100,000 partitions."""
    for name, market in config.markets.items():
        for timeframe in market.timeframes:
            count = market.partitions_estimate(timeframe)
            if count > PARTITION_LIMIT:
                grain = market.grain(timeframe)
                warnings.warn(
                    f"{where}: markets.{name} bars_{timeframe} would have about {count:,} partitions "
                    f"({len(market.symbols)} symbols x {count // len(market.symbols):,} {grain} windows), over "
                    f"Dagster's advised {PARTITION_LIMIT:,}: UI and planning slow down. Set a coarser "
                    f"markets.{name}.partition_grain.{timeframe} (year, quarter, month, week, session).",
                    PartitionCountWarning, stacklevel=2)


def load_config(path: str | Path | None = None) -> JutsuConfig:
    """Read and validate a configuration file (default: `config_path()`)."""
    path = Path(path).expanduser().resolve() if path else config_path()
    text = read_text(path)
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    return parse_config(data, source_path=path)
