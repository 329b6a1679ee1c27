"""``nancemakina report``: the ledger read as a backtest result, written as the backtester's report files.

Every shared column and summary field means what it means in a backtest (the README lists them): entry and
exit times are the exchange's fill times, fees the commissions the exchange charged (estimated from
``backtesting.fee_percent`` only for trades closed before the ledger kept them), ``balance_after`` the
starting balance plus the net PnL of the trades closed so far. Positions still open are listed with their
last mark. The equity curve is marked at every candle close of the data the bot traded on: a replay's
``replay.data``, or the files given with ``--data`` (e.g. Binance's monthly archives for a live run);
without candles it moves at entries and exits only, and the summary says so.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..backtest.equity import Candles, EquityCurve, mark_to_market
from ..backtest.kline_files import DataFileError, load_klines, parse_data_arg
from ..backtest.report_files import render_summary, write_reports
from ..backtest.results import BacktestResult, OpenPosition, Trade, holdings
from ..config import Mode
from ..domain.fills import charged, fee
from ..domain.model import TIMEFRAME_MS, ContractType, Leg, client_order_id
from ..exchange.instruments import SymbolCatalog
from ..sim.launch import trading_pairs
from ..tree.ledger.ledger_snapshots import margin_asset_of
from ..tree.ledger.ledger_store import LedgerStore
from .backtest import load_or_report, resolve_config_path

if TYPE_CHECKING:
    from ..config import Config
    from ..tree.ledger.ledger_records import PositionRecord


def result_from_ledger(db: Path, config: Config, data: list[Path] | None = None) -> BacktestResult:
    """Decisions, closed trades, open positions and the equity curve of the ledger at ``db``.

    ``data``: kline files to mark the equity on (default: a replay's ``replay.data``)."""
    catalog = SymbolCatalog(config.exchange_info_paths())
    store = LedgerStore.open_read_only(db)
    try:
        decisions = [r.decision for r in store.decisions()]
        records = [(r, _entry_fee(store, r, config, catalog)) for r in store.trades()]
        still = [(p, _entry_fee(store, p, config, catalog)) for p in store.open_positions()]
    finally:
        store.close()
    symbols = list(dict.fromkeys([*trading_pairs(config), *(d.symbol for d in decisions)]))
    result = BacktestResult(engine="ledger", klines=0, symbols=tuple(symbols))
    result.decisions = decisions
    result.initial_balances = _initial(config, [p for p, _ in [*records, *still]])
    rates: dict[str, float] = {"USDT": 1.0}
    result.trades = [_trade(r, config, catalog, entry_fee, rates) for r, entry_fee in records]
    result.open_positions = [_open(p, catalog, entry_fee) for p, entry_fee in still]
    candles = _candles(config, data, symbols)
    result.klines = sum(len(c.open_time) for c in candles.values()) if candles else None
    result.equity = _equity(result, candles, config, catalog)
    return result


def _initial(config: Config, positions: list[PositionRecord]) -> dict[str, float]:
    """The simulated account's starting wallets (a replay's and paper trading's; for live, the config's)."""
    bt = config.backtesting
    out = {"USDT": bt.initial_balance_usdt}
    for p in positions:
        asset = p.margin_asset or margin_asset_of(p.symbol, p.contract_type)
        if asset != "USDT":
            out.setdefault(asset, bt.initial_balance_coin.get(asset, 1.0))
    return out


def _entry_fee(store: LedgerStore, p: PositionRecord, config: Config, catalog: SymbolCatalog) -> float:
    """The entry order's commission as charged, else estimated from ``backtesting.fee_percent``."""
    if p.signal_open_time_ms is not None:
        order = store.order(client_order_id(p.symbol, p.signal_open_time_ms, Leg.ENTRY))
        if order is not None and order.commission:
            return float(order.commission)
    spec = catalog.listing(p.symbol, p.contract_type, (p.entry_price,)).spec
    return float(charged(fee(spec, p.qty, p.entry_price, config.backtesting.fee_percent)))


def _trade(
    r: PositionRecord, config: Config, catalog: SymbolCatalog, entry_fee: float, rates: dict[str, float]
) -> Trade:
    asset = r.margin_asset or margin_asset_of(r.symbol, r.contract_type)
    gross = r.realized_pnl or 0.0
    if r.fees is not None:
        fees = float(r.fees)
    else:  # closed before the ledger kept commissions: estimated
        spec = catalog.listing(r.symbol, r.contract_type, (r.entry_price,)).spec
        exit_fee = fee(spec, r.qty, r.exit_price, config.backtesting.fee_percent) if r.exit_price else 0.0
        fees = float(charged(entry_fee) + charged(exit_fee))
    if asset != "USDT" and r.exit_price:
        rates[asset] = r.exit_price
    net = float(charged(gross) - charged(fees))
    rate = rates.get(asset, 0.0)
    return Trade(
        symbol=r.symbol, direction=r.direction, signal_open_time_ms=r.signal_open_time_ms or 0,
        entry_time_ms=r.opened_at_ms, entry_price=r.entry_price, quantity=r.qty, stop_loss=r.stop_loss or 0.0,
        take_profit=r.take_profit or 0.0, exit_time_ms=r.closed_at_ms or r.opened_at_ms,
        exit_price=r.exit_price or 0.0, exit_reason=r.close_reason or "unknown", margin_asset=asset,
        pnl=gross, fees=fees, net_pnl=net, net_pnl_usd=net * rate, fees_usd=fees * rate, balance_after=0.0,
        entry_fee=entry_fee,
    )  # fmt: skip


def _open(p: PositionRecord, catalog: SymbolCatalog, entry_fee: float) -> OpenPosition:
    coin = p.contract_type is ContractType.COIN_M
    size = catalog.listing(p.symbol, p.contract_type).spec.contract_size if coin else None
    return OpenPosition(
        symbol=p.symbol, direction=p.direction, signal_open_time_ms=p.signal_open_time_ms or 0,
        entry_time_ms=p.opened_at_ms, entry_price=p.entry_price, quantity=p.qty,
        stop_loss=p.stop_loss or 0.0, take_profit=p.take_profit or 0.0,
        margin_asset=p.margin_asset or margin_asset_of(p.symbol, p.contract_type), entry_fee=entry_fee,
        contract_size=size,
    )  # fmt: skip


def _candles(config: Config, data: list[Path] | None, symbols: list[str]) -> dict[str, Candles]:
    """Candles of the traded symbols from ``data``, else from a replay's data files; none otherwise."""
    if data is None and config.api.mode is Mode.REPLAY and config.replay.exchange_url is None:
        data = list(config.replay_data_paths())
    out = {}
    for path in data or []:
        symbol, file = parse_data_arg(str(path))
        if symbol in symbols:
            series = load_klines(file, symbol=symbol)
            out[symbol] = Candles(series.open_time, series.close, TIMEFRAME_MS[series.timeframe])
    return out


def _equity(
    result: BacktestResult, candles: dict[str, Candles], config: Config, catalog: SymbolCatalog
) -> EquityCurve:
    coin = ContractType.COIN_M
    sizes = {
        s: catalog.listing(s, coin).spec.contract_size
        if config.settings_for(s).contract_type is coin
        else None
        for s in {t.symbol for t in result.trades}
    }
    coins = {
        margin_asset_of(s, coin): s for s in result.symbols if config.settings_for(s).contract_type is coin
    }
    return mark_to_market(holdings(result, sizes), candles, result.initial_balances, coins)


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="YAML config (its state_dir holds the ledger)")
    parser.add_argument("--out", metavar="DIR", help="report directory (default: reports/<timestamp>)")
    parser.add_argument(
        "--data",
        metavar="[SYMBOL=]FILE",
        action="append",
        help="kline files to mark the equity on at every candle close (default: a replay's replay.data)",
    )


def report_cli(
    args: argparse.Namespace, env: dict[str, str], out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Write the backtester's report files from the ledger."""
    out = out or sys.stdout
    err = err or sys.stderr
    path = resolve_config_path(args.config, env)
    config = load_or_report(path, env, err)
    if config is None:
        return 2
    db = config.state_path() / "ledger.sqlite3"
    if not db.is_file():
        print(f"error: no ledger at {db}; run the bot first (`nancemakina run`)", file=err)
        return 2
    try:
        result = result_from_ledger(db, config, [Path(a) for a in args.data] if args.data else None)
    except DataFileError as exc:
        print(f"error: {exc}", file=err)
        return 2
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(args.out) if args.out else Path("reports") / stamp
    paths, summary = write_reports(
        result, out_dir, title="nancemakina bot (ledger)", extra={"ledger": str(db)}
    )
    print(render_summary(summary, paths), file=out)
    return 0
