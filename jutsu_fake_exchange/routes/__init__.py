"""The protocols the fake exchange speaks: (method, path or prefix/) -> (route name, handler)."""

from functools import partial

from jutsu_fake_exchange.routes import alpaca, binance, schwab, yahoo
from jutsu_fake_exchange.routes.schwab import SchwabAuthState

ROUTES = {
    ("GET", "/api/v3/klines"): ("binance", binance.klines),
    ("GET", "/api/v3/time"): ("binance_time", binance.server_time),
    ("GET", "/fapi/v1/klines"): ("binance_futures", partial(binance.klines, max_limit=1500)),
    ("GET", "/v2/stocks/bars"): ("alpaca", alpaca.bars),
    ("GET", "/v1/corporate-actions"): ("alpaca_actions", alpaca.corporate_actions),
    ("GET", "/marketdata/v1/pricehistory"): ("schwab", schwab.pricehistory),
    ("POST", "/v1/oauth/token"): ("schwab_token", schwab.token),
    ("GET", "/v1/oauth/authorize"): ("schwab_authorize", schwab.authorize),
    ("GET", "/fc"): ("yahoo_cookie", yahoo.cookie),
    ("GET", "/v1/test/getcrumb"): ("yahoo_crumb", yahoo.crumb),
    ("GET", "/v8/finance/chart/"): ("yahoo", yahoo.chart),
}

__all__ = ["ROUTES", "SchwabAuthState"]
