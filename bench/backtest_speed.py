"""Backtest speed and memory on the bundled BTC data.

Prints, all measured in this one invocation:
- a baseline: a bare Python loop feeding two talipp SMAs (21, 200) with the same closes;
- the backtest engine with every rule on (buffer, both filters, risk sizing), batch and incremental drivers;
- the CLI end to end (read CSVs, simulate, write every report incl. equity.png) as the marginal rate between
  a 1-file and a 4-file run, so interpreter start-up and imports cancel out;
- RSS of the incremental strategy after 100k and after 1M klines.

Run: python bench/backtest_speed.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BTC = ROOT / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
ETH = ROOT / "data" / "ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv"

MEMORY_PROBE = """
import resource, sys
from nancemakina.actors.backtest.kline_files import load_klines
from nancemakina.actors.domain.model import Kline
from nancemakina.actors.domain.strategy import PairStrategy, StrategyParams
s = load_klines(sys.argv[1])
o, h, l, c, v = (a.tolist() for a in (s.open, s.high, s.low, s.close, s.volume))
n = len(c)
params = StrategyParams(volume_filter=True, volatility_filter=True, buffer_candles=2)
strategy = PairStrategy("BTCUSDT", "1m", params)
def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20
t0 = int(s.open_time[0])
for i in range(1_000_000):
    j = i % n
    lap = i // n
    k = Kline(symbol="BTCUSDT", timeframe="1m", open_time_ms=t0 + i * 60_000, open=o[j], high=h[j], low=l[j],
              close=c[j] + lap, volume=v[j])
    strategy.on_closed_kline(k, position_open=False, open_positions=0)
    if i + 1 == 100_000:
        at_100k = rss_mb()
print(f"{at_100k:.1f} {rss_mb():.1f}")
"""


def _median_rate(fn: object, klines: int, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return klines / statistics.median(times)


def bare_talipp(closes: list[float]) -> None:
    from talipp.indicators import SMA

    short, long = SMA(21), SMA(200)
    for c in closes:
        short.add(c)
        long.add(c)


def cli_seconds(data_args: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as out:
            cmd = [str(Path(sys.executable).with_name("nancemakina")), "backtest", "--out", out, *data_args]
            start = time.perf_counter()
            subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
            times.append(time.perf_counter() - start)
    # the fastest run: a whole process on a shared machine only ever gets slower than its own cost
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from nancemakina.actors.backtest.engine import AccountSettings, SymbolRun, run_backtest
    from nancemakina.actors.backtest.kline_files import load_klines
    from nancemakina.actors.domain.model import ContractType
    from nancemakina.actors.domain.strategy import StrategyParams
    from nancemakina.actors.exchange.instruments import spec_for

    series = load_klines(BTC)
    n = len(series)
    closes = series.close.tolist()
    baseline = _median_rate(lambda: bare_talipp(closes), n, args.repeat)
    full_rules = StrategyParams(
        buffer_candles=2,
        volume_filter=True,
        volume_ratio=1.2,
        volatility_filter=True,
        bb_min_width_pct=0.1,
        max_concurrent=3,
    )
    run = SymbolRun(
        series=series,
        spec=spec_for("BTCUSDT", ContractType.USDT_M),
        params=full_rules,
        leverage=10,
        fixed_margin=50.0,
        dynamic_sizing=True,
        risk_percent=1.0,
    )
    batch_times = []
    for _ in range(args.repeat):
        result = run_backtest([run], AccountSettings(), engine="batch")
        batch_times.append(result.engine_seconds)
    batch = n / statistics.median(batch_times)
    incremental = n / run_backtest([run], AccountSettings(), engine="incremental").engine_seconds
    print(f"klines in file                      {n:>12,}")
    print(f"baseline: bare loop, 2 talipp SMAs  {baseline:>12,.0f} klines/s")
    print(f"engine, full rules, batch           {batch:>12,.0f} klines/s  ({batch / baseline:.1f}x baseline)")
    ratio = incremental / baseline
    print(f"engine, full rules, incremental     {incremental:>12,.0f} klines/s  ({ratio:.2f}x baseline)")
    print(f"  decisions {len(result.decisions)}, trades {len(result.trades)}")

    one = [f"--data=BTCUSDT={BTC}"]
    four = [*one, f"--data=ETHUSDT={ETH}", f"--data=BTC2USDT={BTC}", f"--data=ETH2USDT={ETH}"]
    eth_n = len(load_klines(ETH))
    t1 = cli_seconds(one, max(3, args.repeat // 2))
    t4 = cli_seconds(four, max(3, args.repeat // 2))
    extra = n + 2 * eth_n
    print(f"CLI 1 file                          {t1:>12.3f} s")
    print(f"CLI 4 files                         {t4:>12.3f} s")
    rate = extra / (t4 - t1)
    spent = t4 - t1
    print(f"CLI end to end, marginal            {rate:>12,.0f} klines/s  ({extra:,} klines in {spent:.3f} s)")

    probe = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(BTC)], check=True, cwd=ROOT, capture_output=True, text=True
    )
    at_100k, at_1m = (float(x) for x in probe.stdout.split())
    print(f"RSS incremental strategy @100k      {at_100k:>12.1f} MB")
    print(f"RSS incremental strategy @1M        {at_1m:>12.1f} MB  (growth {at_1m - at_100k:+.1f} MB)")


if __name__ == "__main__":
    main()
