"""A local fake market-data exchange speaking the Binance, Alpaca, Schwab and Yahoo protocols.

    with FakeExchange() as fx:
        fx.faults.script("binance", Fault.rate_limited(1))
        provider = build_provider("binance", {"base_url": fx.url}, "UTC", Path)
"""

from jutsu_fake_exchange.bars import DEFAULT_SYMBOLS, BarSource, SymbolSpec
from jutsu_fake_exchange.faults import DATA_KINDS, TRANSIENT_MIX, Fault, FaultPlan
from jutsu_fake_exchange.server import FakeClock, FakeExchange, LoggedRequest

__all__ = ["DATA_KINDS", "DEFAULT_SYMBOLS", "TRANSIENT_MIX", "BarSource", "FakeClock", "FakeExchange", "Fault",
           "FaultPlan", "LoggedRequest", "SymbolSpec"]
