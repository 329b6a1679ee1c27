"""Kline events per second the local exchange delivers to one python-binance client.

    python bench/exchange_throughput.py [--candles N] [--updates K] [--out-of-process]

Replays the bundled BTC data at ``max`` speed to one ``BinanceSocketManager`` multiplex socket and prints
events/s (all kline events) and closed klines/s as the client sees them. ``--out-of-process`` runs the
exchange in a child process (``nancemakina exchange``), so client and server do not share one GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from binance import AsyncClient
from binance.ws.streams import BinanceSocketManager

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nancemakina.actors.sim import LocalExchange, SimConfig  # noqa: E402

BTC = ROOT / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
FIRST_OPEN = 1748169180000


async def consume(port: int, closed_target: int) -> tuple[int, int, float]:
    base = f"http://127.0.0.1:{port}"
    client_cls = type("C", (AsyncClient,), {"API_URL": base + "/api", "FUTURES_URL": base + "/fapi"})
    bsm_cls = type("B", (BinanceSocketManager,), {"FSTREAM_URL": f"ws://127.0.0.1:{port}/"})
    client = await client_cls.create()
    bsm = bsm_cls(client, max_queue_size=10_000_000)
    events = closed = 0
    started = 0.0
    # One deadline for the whole run rather than one per message.
    async with bsm.futures_multiplex_socket(["btcusdt@kline_1m"]) as sock, asyncio.timeout(300):
        while closed < closed_target:
            msg = await sock.recv()
            if not events:
                started = time.perf_counter()
            events += 1
            closed += msg["data"]["k"]["x"]
        elapsed = time.perf_counter() - started
        # python-binance's read loop notices the exit only on a message or its 10 s timeout: close here,
        # with its reconnects off so a reconnect cannot race the exit.
        sock.MAX_RECONNECTS = 0
        await asyncio.to_thread(
            urllib.request.urlopen,
            urllib.request.Request(base + "/sim/v1/faults/drop-connections", method="POST"),
        )
    await client.close_connection()
    return events, closed, elapsed


def run_child(candles: int, updates: int) -> tuple[int, int, float]:
    port = 18765
    cmd = [
        str(Path(sys.executable).with_name("nancemakina")), "exchange", "--data", str(BTC), "--speed", "max",
        "--port", str(port), "--updates-per-candle", str(updates),
    ]  # fmt: skip
    child = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, env=os.environ | {"PYTHONPATH": str(ROOT)}
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/sim/v1/status", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        return asyncio.run(consume(port, candles))
    finally:
        child.terminate()
        child.wait(10)


def run_in_process(candles: int, updates: int) -> tuple[int, int, float]:
    config = SimConfig(port=0, hold_until_client=True, updates_per_candle=updates)
    with LocalExchange([BTC], config) as exchange:
        return asyncio.run(consume(exchange.port, candles))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=20_000)
    parser.add_argument("--updates", type=int, default=3, help="unclosed updates per candle")
    args = parser.parse_args()
    rates = {}
    for where, run in (("in-process", run_in_process), ("out-of-process", run_child)):
        events, closed, elapsed = run(args.candles, args.updates)
        rates[where] = events / elapsed
        print(
            f"{where:>14}, {args.updates} unclosed updates/candle: {events} kline events ({closed} closed) "
            f"in {elapsed:.2f} s = {events / elapsed:,.0f} events/s, {closed / elapsed:,.0f} closed klines/s"
        )
    ratio = rates["out-of-process"] / rates["in-process"]
    print(f"out-of-process / in-process (shared GIL baseline): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
