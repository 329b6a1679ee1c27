"""``nancemakina report``: the ledger as a ``BacktestResult``, written as the backtester's report files."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..backtest.engine import BacktestResult, Trade
from ..backtest.report_files import render_summary, write_reports
from ..domain.fills import ExitReason, fee
from ..exchange.instruments import SymbolCatalog
from ..tree.ledger.ledger_store import LedgerStore
from .backtest import load_or_report, resolve_config_path

if TYPE_CHECKING:
    from ..config import Config

_EXIT = {
    reason.value: reason
    for reason in (
        ExitReason.STOP_LOSS,
        ExitReason.TAKE_PROFIT,
        ExitReason.TRAILING_STOP,
        ExitReason.TIME_EXIT,
        ExitReason.REVERSAL,
    )
}
"""The ledger's close reasons that are the backtester's exit reasons (any other close is ``manual``)."""


def result_from_ledger(db: Path, config: Config) -> BacktestResult:
    """Decisions and closed trades from the ledger; balances from the configured starting balance.

    The ledger records realized PnL as the exchange reports it; Binance's ``rp`` excludes commissions,
    so fees are estimated from ``backtesting.fee_percent`` on the entry and exit notionals (exact for
    replay and paper, whose simulated broker charges exactly that; an estimate for live).
    """
    store = LedgerStore.open_read_only(db)
    try:
        decisions = [r.decision for r in store.decisions()]
        records = store.trades()
    finally:
        store.close()
    catalog = SymbolCatalog(config.exchange_info_paths())
    start = config.backtesting.initial_balance_usdt
    fee_pct = config.backtesting.fee_percent
    result = BacktestResult(engine="ledger", klines=0)
    result.decisions = decisions
    balances: dict[str, float] = {}
    first = min(
        (r.opened_at_ms for r in records), default=decisions[0].decided_open_time_ms if decisions else 0
    )
    result.equity.append((first, start))
    equity = start
    for r in records:
        asset = r.margin_asset or "USDT"
        balances.setdefault(asset, start if asset == "USDT" else 1.0)
        gross = r.realized_pnl or 0.0
        spec = catalog.listing(r.symbol, r.contract_type, (r.entry_price,)).spec
        fees = fee(spec, r.qty, r.entry_price, fee_pct)
        if r.exit_price:
            fees += fee(spec, r.qty, r.exit_price, fee_pct)
        pnl = gross - fees
        balances[asset] += pnl
        rate = 1.0 if asset == "USDT" else (r.exit_price or 0.0)
        usd = pnl * rate
        equity += usd
        result.trades.append(
            Trade(
                symbol=r.symbol,
                direction=r.direction,
                signal_open_time_ms=r.signal_open_time_ms or 0,
                entry_time_ms=r.opened_at_ms,
                entry_price=r.entry_price,
                quantity=r.qty,
                stop_loss=r.stop_loss or 0.0,
                take_profit=r.take_profit or 0.0,
                exit_time_ms=r.closed_at_ms or r.opened_at_ms,
                exit_price=r.exit_price or 0.0,
                exit_reason=_EXIT.get(r.close_reason or "", ExitReason.MANUAL),
                margin_asset=asset,
                pnl=gross,
                fees=fees,
                net_pnl=pnl,
                net_pnl_usd=usd,
                fees_usd=fees * rate,
                balance_after=balances[asset],
            )
        )
        result.equity.append((r.closed_at_ms or r.opened_at_ms, equity))
    result.initial_balances = {a: (start if a == "USDT" else 1.0) for a in balances} or {"USDT": start}
    result.final_balances = dict(balances) or {"USDT": start}
    return result


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="YAML config (its state_dir holds the ledger)")
    parser.add_argument("--out", metavar="DIR", help="report directory (default: reports/<timestamp>)")


def report_cli(
    args: argparse.Namespace, env: dict[str, str], out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Write the backtester's report files from the ledger."""
    path = resolve_config_path(args.config, env)
    config = load_or_report(path, env, err)
    if config is None:
        return 2
    db = config.state_path() / "ledger.sqlite3"
    if not db.is_file():
        print(f"error: no ledger at {db}; run the bot first (`nancemakina run`)", file=err)
        return 2
    result = result_from_ledger(db, config)
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(args.out) if args.out else Path("reports") / stamp
    paths, summary = write_reports(
        result, out_dir, title=f"nancemakina ledger — {db}", extra={"ledger": str(db)}
    )
    print(render_summary(summary, paths), file=out)
    return 0
