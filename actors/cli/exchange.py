"""``nancemakina exchange``: run the local exchange in the foreground until interrupted.

    nancemakina exchange --data data/BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv --speed max

Defaults: port 8765 on 127.0.0.1, API key ``nancemakina-local-key``, secret ``nancemakina-local-secret``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading
from collections.abc import Sequence

from ..sim.config import DEFAULT_API_KEY, DEFAULT_API_SECRET, DEFAULT_PORT, MAX_SPEED, SimConfig
from ..sim.server import CannotListenError, LocalExchange


def _speed(text: str) -> float:
    if text.lower() == "max":
        return MAX_SPEED
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("speed must be positive or 'max'")
    return value


def _start(text: str) -> int:
    if text.isdigit():
        return int(text)
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nancemakina exchange", description="Local Binance Futures exchange replaying klines."
    )
    p.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="[SYMBOL=]FILE",
        help="kline CSV to replay (repeatable)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"TCP port on 127.0.0.1 (default {DEFAULT_PORT}; 0 = any)",
    )
    p.add_argument(
        "--speed", type=_speed, default=1.0, help="replay speed: multiple of real time, or 'max' (default 1)"
    )
    p.add_argument(
        "--start",
        type=_start,
        default=None,
        help="first replayed candle: Unix ms or ISO time (default: first)",
    )
    p.add_argument("--api-key", default=DEFAULT_API_KEY, help=f"accepted API key (default {DEFAULT_API_KEY})")
    p.add_argument(
        "--api-secret", default=DEFAULT_API_SECRET, help=f"HMAC secret (default {DEFAULT_API_SECRET})"
    )
    p.add_argument(
        "--updates-per-candle", type=int, default=3, help="unclosed kline updates per candle (0-3)"
    )
    p.add_argument(
        "--update-interval-ms",
        type=int,
        default=None,
        help="an unclosed kline update every this many ms of market time along the candle's path "
        "(Binance's rate: 250); overrides --updates-per-candle",
    )
    p.add_argument("--slippage-pct", type=float, default=0.0)
    p.add_argument("--fee-pct", type=float, default=0.05)
    p.add_argument(
        "--pacer-timeout", type=float, default=30.0, help="seconds a lock-step candle waits for acks"
    )
    p.add_argument("--weight-limit", type=int, default=2400, help="IP request weight per minute")
    p.add_argument(
        "--order-limits",
        default="300,1200",
        metavar="TEN_S,MINUTE",
        help="the account's new orders per 10 s and per minute (Binance: 300,1200); raise them for a replay "
        "that squeezes hours into minutes",
    )
    p.add_argument(
        "--exchange-info",
        action="append",
        default=[],
        metavar="FILE",
        help="a saved GET /fapi/v1/exchangeInfo or /dapi/v1/exchangeInfo answer (JSON or .json.gz; "
        "repeatable): its filters come before the bundled ones",
    )
    p.add_argument(
        "--funding",
        action="append",
        default=[],
        metavar="[SYMBOL=]FILE",
        help="a Binance funding-rate archive file (CSV or zip, SYMBOL-fundingRate-YYYY-MM.*; repeatable): "
        "premiumIndex and fundingRate serve its settled rates",
    )
    p.add_argument("--paused", action="store_true", help="start with the clock paused (POST /sim/v1/resume)")
    return p


def run_exchange_cli(argv: Sequence[str] | None = None) -> int:
    """Entry point wired to ``nancemakina exchange``; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        ten_s, minute = (int(x) for x in args.order_limits.split(","))
    except ValueError:
        parser.error(f"--order-limits: two whole numbers TEN_S,MINUTE expected, got {args.order_limits!r}")
    if ten_s <= 0 or minute <= 0:
        parser.error(f"--order-limits: both must be positive, got {args.order_limits!r}")
    config = SimConfig(
        port=args.port,
        api_key=args.api_key,
        api_secret=args.api_secret,
        speed=args.speed,
        start_ms=args.start,
        paused=args.paused,
        hold_until_client=args.speed == MAX_SPEED,
        updates_per_candle=args.updates_per_candle,
        update_interval_ms=args.update_interval_ms,
        slippage_pct=args.slippage_pct,
        fee_pct=args.fee_pct,
        pacer_timeout_s=args.pacer_timeout,
        weight_limit=args.weight_limit,
        order_limit_10s=ten_s,
        order_limit_1m=minute,
        exchange_info=tuple(args.exchange_info),
        funding_rates=tuple(args.funding),
    )
    try:
        exchange = LocalExchange(args.data, config).start()
    except CannotListenError as exc:
        print(
            f"nancemakina exchange: --port {args.port}: {exc}; pick another port (0: any free one)",
            file=sys.stderr,
        )
        return 2
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"nancemakina exchange: {exc}", file=sys.stderr)
        return 2
    for listing in exchange.catalog.synthesised.values():
        print(f"warning: {listing.warning()}", file=sys.stderr)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    urls = f"fapi {exchange.fapi_url}, dapi {exchange.dapi_url}, ws {exchange.ws_url}"
    print(f"local exchange on {exchange.rest_url} ({urls})")
    print(f"api key {config.api_key!r}, secret {config.api_secret!r}; admin {exchange.admin_url}/status")
    try:
        stop.wait()
    finally:
        exchange.stop()
    return 0
