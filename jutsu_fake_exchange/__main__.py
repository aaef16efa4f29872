"""Run the fake exchange standalone: `python -m jutsu_fake_exchange --port 8765`.

Prints the base URLs and credentials so every provider can be tried offline; Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import threading

from jutsu_fake_exchange.faults import TRANSIENT_MIX
from jutsu_fake_exchange.server import FakeExchange


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jutsu_fake_exchange", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--rate-limit", type=float, default=None, help="requests/s before answering 429")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of requests given a transient fault")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    exchange = FakeExchange(port=args.port, seed=args.seed, latency=args.latency, rate_limit=args.rate_limit)
    if args.fault_rate:
        exchange.faults.random("*", args.fault_rate, TRANSIENT_MIX, seed=args.seed)
    exchange.start()
    urls = exchange.base_urls()
    print(f"fake exchange listening on {exchange.url}", flush=True)
    for name in ("binance", "alpaca", "schwab", "yahoo"):
        print(f"  {name:8s} base_url: {urls[name]}")
    print(f"  yahoo    cookie_url: {urls['yahoo_cookie_url']}")
    print(f"  alpaca   APCA_API_KEY_ID={exchange.alpaca_key_id} APCA_API_SECRET_KEY={exchange.alpaca_secret_key}")
    print(f"  schwab   SCHWAB_CLIENT_ID={exchange.schwab.client_id} SCHWAB_CLIENT_SECRET={exchange.schwab.client_secret}")
    print(f"           then: python -m jutsu_pipeline.providers.schwab authorize-url --base-url {exchange.url}")
    print("  symbols: " + ", ".join(sorted(exchange.bars.symbols)), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        exchange.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
