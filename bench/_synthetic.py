"""Synthetic replay symbols for benchmarks: many USDⓈ-M series derived from the bundled BTC/ETH 1m files.

Symbol ``k`` is the BTC (even ``k``) or ETH (odd ``k``) series, rotated by ``k × shift`` candles and scaled by
its own factor, on the source's own open times. Every file then covers the same minutes (the replay clock
walks one shared timeline and every 1m step carries all symbols), while crossovers land on different
candles. The rotation leaves one price jump per file, where the series wraps around.

The symbols (``SYM000USDT`` ...) are not in the bundled exchangeInfo: the local exchange lists them with a
synthetic entry modelled on ETHUSDT (``actors.exchange.instruments.synthetic_symbol``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nancemakina.actors.backtest.kline_files import load_klines

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (
    ROOT / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv",
    ROOT / "data" / "ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv",
)


def symbol_name(k: int) -> str:
    return f"SYM{k:03d}USDT"


def write_symbols(out_dir: Path, count: int, rows: int, *, shift: int = 37) -> list[Path]:
    """Write ``count`` files of ``rows`` 1m candles each (at most the sources' length); returns their paths.

    Prices are rounded to 0.01 so the synthetic tick size stays 0.01 (and every price is on it).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = [load_klines(p) for p in SOURCES]
    n = min(len(s) for s in sources)
    rows = min(rows, n)
    paths = []
    for k in range(count):
        src = sources[k % 2]
        index = (np.arange(rows) + k * shift) % n
        factor = 0.4 + 0.8 * ((k * 7) % count) / max(1, count)
        cols = [np.round(getattr(src, c)[index] * factor, 2) for c in ("open", "high", "low", "close")]
        table = np.column_stack([src.open_time[:rows].astype(np.float64), *cols, src.volume[index]])
        path = out_dir / f"{symbol_name(k)}_PERP_1m_synthetic.csv"
        np.savetxt(
            path,
            table,
            fmt=("%d", "%.2f", "%.2f", "%.2f", "%.2f", "%.3f"),
            delimiter=",",
            header="open_time_ms,open,high,low,close,volume",
            comments="",
        )
        paths.append(path)
    return paths
