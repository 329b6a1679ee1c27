"""KlineSocket (python-binance's socket with our lean read loop) against a real loopback WebSocket server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from nancemakina.actors.exchange.kline_socket import KlineSocket, market_socket_address

FRAME = {"stream": "btcusdt@kline_1m", "data": {"e": "kline", "k": {"t": 1, "x": True}}}


def run(script: list[str | None]) -> tuple[list[tuple[Any, int]], list[str], str, str]:
    """Serve ``script`` (None = close the connection) to one KlineSocket; what it saw and why it ended."""
    frames: list[tuple[Any, int]] = []
    malformed: list[str] = []
    paths: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        paths.append(ws.request.path if ws.request else "")
        for text in script:
            if text is None:
                await ws.close()
                return
            await ws.send(text)
        await ws.wait_closed()  # the script is out: hold the connection until the client leaves

    async def main() -> str:
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            url, prefix = market_socket_address(f"ws://127.0.0.1:{port}/", usd_m=True)
            sock = KlineSocket(
                url=url,
                prefix=prefix,
                streams=["btcusdt@kline_1m", "ethusdt@kline_5m"],
                on_frame=lambda m, ns: frames.append((m, ns)),
                on_malformed=malformed.append,
            )
            async with sock:
                return await asyncio.wait_for(sock.ended, 5)

    reason = asyncio.run(main())
    return frames, malformed, reason, paths[0]


def test_frames_are_decoded_in_order_and_a_malformed_one_is_skipped_without_dropping_the_connection():
    good = json.dumps(FRAME)
    second = json.dumps({**FRAME, "stream": "ethusdt@kline_5m"})
    frames, malformed, reason, path = run([good, "{not json", second, None])
    assert [m["stream"] for m, _ in frames] == ["btcusdt@kline_1m", "ethusdt@kline_5m"]
    assert frames[0][1] <= frames[1][1]  # perf_counter_ns stamps, in arrival order
    assert len(malformed) == 1
    assert "not JSON" in malformed[0]
    assert "{not json" in malformed[0]
    assert reason.startswith("error: ConnectionClosed")
    # the URL python-binance's futures_multiplex_socket would build for USDⓈ-M market streams
    assert path == "/market/stream?streams=btcusdt@kline_1m/ethusdt@kline_5m"


def test_coin_m_uses_the_dstream_root_without_the_market_segment():
    assert market_socket_address("wss://dstream.binance.com/", usd_m=False) == (
        "wss://dstream.binance.com/",
        "stream?streams=",
    )
    assert market_socket_address("wss://fstream.binance.com/", usd_m=True) == (
        "wss://fstream.binance.com/market/",
        "stream?streams=",
    )
