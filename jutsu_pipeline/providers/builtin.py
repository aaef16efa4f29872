"""The built-in providers' specs: options models and credentials here (reading the configuration validates
with them and imports only pydantic); each factory imports its implementation (polars, httpx, tenacity)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from jutsu_pipeline.providers.http.settings import HttpOptions
from jutsu_pipeline.providers.registry import BuildContext, Credential, ProviderOptions, ProviderSpec

if TYPE_CHECKING:
    from jutsu_pipeline.providers.base import BarsProvider


def _implementation(module: str, name: str) -> Any:
    return getattr(import_module(f"jutsu_pipeline.providers.{module}"), name)


# -- sample, files ---------------------------------------------------------------------------------
class SampleOptions(ProviderOptions):
    path: Path | None = None  # another folder laid out like the bundled one


class FilesOptions(ProviderOptions):
    path: Path  # the folder with <SYMBOL>.csv or .parquet files (relative: to the config file)


def _sample(options: SampleOptions, context: BuildContext) -> BarsProvider:
    sample = import_module("jutsu_pipeline.providers.sample")
    return sample.SampleProvider(context.resolve(options.path) if options.path else sample.SAMPLE_DIR,
                                 context.timezone)


def _files(options: FilesOptions, context: BuildContext) -> BarsProvider:
    return _implementation("files", "FilesProvider")(context.resolve(options.path), context.timezone)


# -- binance ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Market:
    """One Binance klines API: host, path, page cap, per-minute weight budget and request weight by limit."""

    base_url: str
    klines_path: str
    max_limit: int
    weight_per_minute: float
    weights: tuple[tuple[int, int], ...]  # (largest limit, weight), ascending

    def weight(self, limit: int) -> int:
        return next(weight for upto, weight in self.weights if limit <= upto)


BINANCE_MARKETS = {
    "spot": Market("https://data-api.binance.vision", "/api/v3/klines", 1000, 6000.0, ((1000, 2),)),
    "usdm_futures": Market("https://fapi.binance.com", "/fapi/v1/klines", 1500, 2400.0,
                           ((99, 1), (499, 2), (1000, 5), (1500, 10))),
}


class BinanceOptions(HttpOptions):
    market: Literal["spot", "usdm_futures"] = "spot"
    page_limit: int | None = Field(default=None, ge=1, le=1500)  # default: the market's maximum
    symbols: dict[str, str] = Field(default_factory=dict)  # explicit name map, e.g. {BTC/USDT: BTCUSDT}

    @model_validator(mode="after")
    def _limit_within_market(self) -> BinanceOptions:
        cap = BINANCE_MARKETS[self.market].max_limit
        if self.page_limit is not None and self.page_limit > cap:
            raise ValueError(f"page_limit {self.page_limit} is above the {self.market} maximum of {cap}")
        return self


# -- alpaca ----------------------------------------------------------------------------------------
ALPACA_PAGE_LIMIT = 10_000
ALPACA_ACTIONS_PATH = "/v1/corporate-actions"


class AlpacaOptions(HttpOptions):
    feed: Literal["sip", "iex", "delayed_sip"] = "sip"
    adjustment: Literal["raw", "split", "dividend", "all"] = "raw"  # stored as delivered
    delay_minutes: float | None = Field(default=None, ge=0)  # default: 15 with feed sip, else 0
    page_limit: int = Field(default=ALPACA_PAGE_LIMIT, ge=1, le=ALPACA_PAGE_LIMIT)
    key_id_env: str = "APCA_API_KEY_ID"  # names of the environment variables holding the keys
    secret_key_env: str = "APCA_API_SECRET_KEY"
    actions_path: str = ALPACA_ACTIONS_PATH  # the corporate-actions endpoint


# -- schwab, yahoo ---------------------------------------------------------------------------------
class SchwabOptions(HttpOptions):
    client_id_env: str = "SCHWAB_CLIENT_ID"  # names of the environment variables holding the credentials
    client_secret_env: str = "SCHWAB_CLIENT_SECRET"
    token_file_env: str = "SCHWAB_TOKEN_FILE"
    refresh_leeway_seconds: float = Field(default=300, ge=0)  # refresh the access token this long before expiry
    delay_minutes: float = Field(default=0, ge=0)
    daily_timezone: str = "America/Chicago"  # daily candles are stamped at this zone's midnight


class YahooOptions(HttpOptions):
    cookie_url: str = "https://fc.yahoo.com"
    user_agent: str = "Mozilla/5.0 (jutsu-pipeline)"
    delay_minutes: float = Field(default=0, ge=0)


SAMPLE = ProviderSpec("sample", SampleOptions, _sample, local=True, description="bundled daily bars of five US stocks")
FILES = ProviderSpec("files", FilesOptions, _files, local=True, description="your CSV or Parquet files")
BINANCE = ProviderSpec(
    "binance", BinanceOptions,
    lambda options, context: _implementation("binance", "BinanceProvider")(options, context.timezone),
    description="Binance spot or USD-M futures klines (public)")
ALPACA = ProviderSpec(
    "alpaca", AlpacaOptions,
    lambda options, context: _implementation("alpaca", "AlpacaProvider")(options, context.timezone, context.secrets),
    credentials=(Credential("alpaca_key_id", "APCA_API_KEY_ID", "Alpaca API key id", env_option="key_id_env"),
                 Credential("alpaca_secret_key", "APCA_API_SECRET_KEY", "Alpaca API secret key",
                            env_option="secret_key_env")),
    description="Alpaca market data v2 stock bars")
SCHWAB = ProviderSpec(
    "schwab", SchwabOptions,
    lambda options, context: _implementation("schwab", "SchwabProvider")(options, context.timezone, context.secrets),
    credentials=(Credential("schwab_client_id", "SCHWAB_CLIENT_ID", "Schwab app key", env_option="client_id_env"),
                 Credential("schwab_client_secret", "SCHWAB_CLIENT_SECRET", "Schwab app secret",
                            env_option="client_secret_env"),
                 Credential("schwab_token_file", "SCHWAB_TOKEN_FILE", "path of the Schwab OAuth token JSON file",
                            secret=False, env_option="token_file_env")),
    description="Charles Schwab price history (OAuth2)")
YAHOO = ProviderSpec(
    "yahoo", YahooOptions,
    lambda options, context: _implementation("yahoo", "YahooProvider")(options, context.timezone),
    description="Yahoo chart v8 (experimental, unofficial)")
BUILT_IN: tuple[ProviderSpec[Any], ...] = (SAMPLE, FILES, BINANCE, ALPACA, SCHWAB, YAHOO)
