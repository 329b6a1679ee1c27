"""Batch backtest speed of V2 against V1's, on the bundled month (BTCUSDT + ETHUSDT on one account).

Prints klines per second (median of ``--repeat`` runs of the batch engine, the engine's own timer) for:
- V1 as shipped (the baseline);
- V1 with every exit (trailing stop, time exit, reversal exit);
- V2 with its defaults (trend timeframes 15m and 1h, StochRSI, ATR stop) and the BTC correlation filter;
- V2 with every option: the above, every exit, max_concurrent, and the funding filter on SYNTHETIC funding
  rates (``tests/funding_support.py``: Binance's archive layout, made-up rates — there is no real archive in
  the repository);
- the incremental engine (the live pair actor's code path) on the last one, once;
and each one's ratio to V1's batch speed; then the RSS of an incremental V2 strategy (every indicator,
trend readings every 15 minutes) after 100k and after 1M klines (BTC's month looped, prices shifted).

Run: python bench/v2_speed.py [--repeat N] [--no-memory]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BTC = ROOT / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
ETH = ROOT / "data" / "ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv"

MEMORY_PROBE = """
import resource, sys
from nancemakina.actors.backtest.kline_files import load_klines
from nancemakina.actors.domain.model import Kline
from nancemakina.actors.domain.strategy_v2 import StopMode, V2Params, V2Strategy
from nancemakina.actors.domain.trend import TrendReading
s = load_klines(sys.argv[1])
o, h, l, c, v = (a.tolist() for a in (s.open, s.high, s.low, s.close, s.volume))
n = len(c)
strategy = V2Strategy("BTCUSDT", "1m", V2Params(trend_timeframes=("15m",), stop_mode=StopMode.PIVOT))
def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20
t0 = int(s.open_time[0])
for i in range(1_000_000):
    j = i % n
    lap = i // n
    t = t0 + i * 60_000
    if (t + 60_000) % 900_000 == 0:
        strategy.on_trend(TrendReading(symbol="BTCUSDT", timeframe="15m", close_time_ms=t + 60_000, trend=1))
    k = Kline(symbol="BTCUSDT", timeframe="1m", open_time_ms=t, open=o[j] + lap, high=h[j] + lap,
              low=l[j] + lap, close=c[j] + lap, volume=v[j])
    strategy.on_closed_kline(k, position_open=False, open_positions=0)
    if i + 1 == 100_000:
        at_100k = rss_mb()
print(f"{at_100k:.1f} {rss_mb():.1f}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true", help="skip the 1M-kline RSS probe")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # tests.funding_support
    from nancemakina.actors.backtest.engine import AccountSettings, SymbolRun, run_backtest
    from nancemakina.actors.backtest.funding_files import load_funding
    from nancemakina.actors.backtest.kline_files import load_klines
    from nancemakina.actors.domain.exits import ExitParams
    from nancemakina.actors.domain.model import ContractType
    from nancemakina.actors.domain.strategy import StrategyParams
    from nancemakina.actors.domain.strategy_v2 import BtcFilter, V2Params
    from nancemakina.actors.exchange.instruments import spec_for
    from tests.funding_support import write_synthetic_funding

    series = [load_klines(BTC), load_klines(ETH)]
    klines = sum(len(s) for s in series)
    with tempfile.TemporaryDirectory() as folder:
        funding = {
            s.symbol: load_funding(s.symbol, [write_synthetic_funding(Path(folder), s.symbol)])
            for s in series
        }

    def runs(params: object, exits: ExitParams | None = None) -> list[SymbolRun]:
        return [
            SymbolRun(
                series=s,
                spec=spec_for(s.symbol, ContractType.USDT_M, s.close[:100].tolist()),
                params=params,  # type: ignore[arg-type]
                leverage=10,
                fixed_margin=50.0,
                dynamic_sizing=False,
                risk_percent=1.0,
                exits=exits or ExitParams(),
                funding=funding[s.symbol],
            )
            for s in series
        ]

    every_exit = ExitParams(callback_pct=0.2, activation_ratio=1.0, time_exit_candles=60, reversal_exit=True)
    v2 = V2Params(btc_filter=BtcFilter())
    cases = {
        "V1 as shipped": runs(StrategyParams()),
        "V1, every exit": runs(StrategyParams(), every_exit),
        "V2 defaults + BTC filter": runs(v2),
        "V2, every option (SYNTHETIC funding)": runs(
            dataclasses.replace(v2, max_concurrent=1, max_funding_rate=0.0001), every_exit
        ),
    }
    rates = {}
    for name, case in cases.items():
        seconds = [run_backtest(case, AccountSettings()).engine_seconds for _ in range(args.repeat)]
        rates[name] = klines / statistics.median(seconds)
    incremental = run_backtest(
        cases["V2, every option (SYNTHETIC funding)"], AccountSettings(), engine="incremental"
    )
    rates["V2, every option, incremental engine"] = klines / incremental.engine_seconds
    base = rates["V1 as shipped"]
    print(f"klines (BTC + ETH month)                {klines:>12,}")
    for name, rate in rates.items():
        print(f"{name:<40}{rate:>12,.0f} klines/s  ({rate / base:.3f} x V1 batch)")
    slower = base / rates["V2, every option (SYNTHETIC funding)"]
    print(f"V1 batch / V2 batch (every option)      {slower:>12.1f} x")
    if not args.no_memory:
        probe = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, str(BTC)],
            check=True,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        at_100k, at_1m = (float(x) for x in probe.stdout.split())
        print(f"RSS incremental V2 strategy @100k       {at_100k:>12.1f} MB")
        print(
            f"RSS incremental V2 strategy @1M         {at_1m:>12.1f} MB  (growth {at_1m - at_100k:+.1f} MB)"
        )


if __name__ == "__main__":
    main()
