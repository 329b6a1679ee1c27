"""Batch backtest speed of V2 against V1's, on the bundled month (BTCUSDT + ETHUSDT on one account).

Prints klines per second (median of ``--repeat`` runs of the batch engine, the engine's own timer) for:
- V1 as shipped (the baseline);
- V1 with every exit (trailing stop, time exit, reversal exit);
- V2 with its defaults (trend timeframes 15m and 1h, StochRSI, ATR stop) and the BTC correlation filter;
- V2 with every option: the above, every exit, max_concurrent, and the funding filter on SYNTHETIC funding
  rates (``tests/funding_support.py``: Binance's archive layout, made-up rates — there is no real archive in
  the repository);
- the incremental engine (the live pair actor's code path) on the last one, once;
and each one's ratio to V1's batch speed.

Run: python bench/v2_speed.py [--repeat N]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BTC = ROOT / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
ETH = ROOT / "data" / "ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
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


if __name__ == "__main__":
    main()
