"""What reading one market-data frame costs the event-loop thread, three ways, in this one invocation.

A ``websockets`` server in a child process (its CPU is not ours) sends ``--frames`` copies of a real
combined-stream kline frame as fast as it can; the client measures its own thread's CPU time
(``time.thread_time``) and wall time per frame while:

- ``websockets``: reading the frames with ``ws.recv()`` and decoding them (the floor);
- ``python-binance``: reading them through ``ReconnectingWebsocket.recv()``, the library's own read loop
  and queue (what ``MarketConnections`` used before ``KlineSocket``);
- ``KlineSocket``: python-binance's socket with our lean read loop, frames handed to a callback.

Run: python bench/ws_read_cost.py [--frames N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from binance.ws.reconnecting_websocket import ReconnectingWebsocket  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import ServerConnection, serve  # noqa: E402

from nancemakina.actors.exchange.kline_socket import KlineSocket  # noqa: E402

SAMPLE = ROOT / "tests" / "resources" / "binance_api_samples" / "nautilus__kline_stream_closed.json"


def frame_text() -> str:
    """One combined-stream frame around the real kline event sample."""
    event = json.loads(SAMPLE.read_text()) if SAMPLE.exists() else None
    if not isinstance(event, dict) or "k" not in event:
        raise SystemExit(f"{SAMPLE}: expected a kline event sample with a 'k' object")
    return json.dumps({"stream": "btcusdt@kline_1m", "data": event})


def _serve(port: int, frames: int, text: str) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()  # the client's "go": its clock starts now
        for _ in range(frames):
            await ws.send(text)
        await asyncio.sleep(30)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", port):
            await asyncio.Future()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


Reader = Callable[[str, int], Awaitable[tuple[float, float]]]


async def read_websockets(url: str, frames: int) -> tuple[float, float]:
    async with connect(url) as ws:
        await ws.send("go")
        cpu, wall = time.thread_time(), time.perf_counter()
        for _ in range(frames):
            json.loads(await ws.recv())
        return time.thread_time() - cpu, time.perf_counter() - wall


async def read_python_binance(url: str, frames: int) -> tuple[float, float]:
    sock = ReconnectingWebsocket(url=url, path="", prefix="", max_queue_size=frames + 1)
    sock.MAX_RECONNECTS = 0
    async with sock:
        await sock.ws.send("go")
        cpu, wall = time.thread_time(), time.perf_counter()
        for _ in range(frames):
            await sock.recv()
        return time.thread_time() - cpu, time.perf_counter() - wall


async def read_kline_socket(url: str, frames: int) -> tuple[float, float]:
    got = 0
    done = asyncio.get_running_loop().create_future()

    def on_frame(message: Any, received_ns: int) -> None:  # noqa: ARG001
        nonlocal got
        got += 1
        if got == frames:
            done.set_result(None)

    sock = KlineSocket(url=url, prefix="", streams=[], on_frame=on_frame, on_malformed=print)
    async with sock:
        await sock.ws.send("go")
        cpu, wall = time.thread_time(), time.perf_counter()
        await done
        return time.thread_time() - cpu, time.perf_counter() - wall


def measure(reader: Reader, frames: int, text: str) -> tuple[float, float]:
    port = _free_port()
    server = multiprocessing.Process(target=_serve, args=(port, frames, text), daemon=True)
    server.start()
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return asyncio.run(reader(f"ws://127.0.0.1:{port}/", frames))
    finally:
        server.kill()
        server.join()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--frames", type=int, default=50_000)
    args = p.parse_args(argv)
    text = frame_text()
    print(f"{args.frames:,} frames of {len(text)} bytes each, server in a child process")
    rows = {}
    for name, reader in (
        ("websockets recv + json", read_websockets),
        ("python-binance recv()", read_python_binance),
        ("KlineSocket callback", read_kline_socket),
    ):
        cpu, wall = measure(reader, args.frames, text)
        rows[name] = cpu / args.frames * 1e6
        print(f"{name:24s} CPU {rows[name]:6.1f} µs/frame   wall {wall / args.frames * 1e6:6.1f} µs/frame")
    ratio = rows["python-binance recv()"] / rows["KlineSocket callback"]
    print(f"python-binance's read loop costs {ratio:.1f}× KlineSocket's CPU per frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
