"""Backtest and ledger reports: summary.json, trades.csv, decisions.csv, equity.png and a one-screen summary.

The live ``report`` command writes the same files from the ledger, so a user can hold what the bot did
beside what the backtest said: every shared column means the same in both (the README lists them).
Prices are written as the exact decimals they are (``repr`` of a float carrying one), money to 8 decimal
places, so equal values give byte-equal files and nothing shows float noise. Positions still open at the
end are listed in the summary, marked at the last close, never given an invented exit. equity.png needs
matplotlib, the optional ``plot`` extra: without it the other files are written and the summary (file and
screen) says the chart was skipped and why.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..domain.fills import charged
from .equity import max_drawdown_pct
from .report_chart import plot_equity

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..domain.model import Decision
    from .results import BacktestResult, OpenPosition, Trade

PLOT_MISSING = "matplotlib not installed (pip install 'nancemakina[plot]')"
"""Why equity.png was skipped when the ``plot`` extra is absent (summary.json ``skipped``, and on screen)."""
DECISION_COLUMNS = (
    "open_time_ms",
    "symbol",
    "direction",
    "decision",
    "reason",
    "entry",
    "stop_loss",
    "take_profit",
    "decided_open_time_ms",
)
TRADE_COLUMNS = (
    "symbol",
    "direction",
    "signal_open_time_ms",
    "entry_time_ms",
    "entry_price",
    "quantity",
    "stop_loss",
    "take_profit",
    "exit_time_ms",
    "exit_price",
    "exit_reason",
    "margin_asset",
    "pnl",
    "fees",
    "net_pnl",
    "balance_after",
)


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _money(value: float | Decimal) -> Decimal:
    """An amount of money to 8 decimal places (as the exchange books it): no 9991.068271748001."""
    return charged(value)


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def decision_row(d: Decision) -> list[str]:
    """One decisions.csv row."""
    return [
        str(d.signal_open_time_ms),
        d.symbol,
        d.direction.value,
        d.outcome.value,
        d.reason.value if d.reason is not None else "",
        _num(d.entry),
        _num(d.stop_loss),
        _num(d.take_profit),
        str(d.decided_open_time_ms),
    ]


def trade_row(t: Trade, balance_after: Decimal) -> list[str]:
    """One trades.csv row; ``balance_after``: see :func:`closed_trades`."""
    pnl, fees = _money(t.pnl), _money(t.fees)
    return [
        t.symbol,
        t.direction.value,
        str(t.signal_open_time_ms),
        str(t.entry_time_ms),
        _num(t.entry_price),
        str(t.quantity),
        _num(t.stop_loss),
        _num(t.take_profit),
        str(t.exit_time_ms),
        _num(t.exit_price),
        str(t.exit_reason),
        t.margin_asset,
        _text(pnl),
        _text(fees),
        _text(pnl - fees),
        _text(balance_after),
    ]


def closed_trades(result: BacktestResult) -> list[tuple[Trade, Decimal]]:
    """Each closed trade, in the order they closed (at one time, by symbol), with ``balance_after``: its
    margin asset's starting balance plus the net PnL of every trade of that asset closed up to and including
    it (fees of positions still open are not in it)."""
    balances = {a: _money(v) for a, v in result.initial_balances.items()}
    rows = []
    for t in sorted(result.trades, key=lambda t: (t.exit_time_ms, t.symbol)):
        balance = balances.get(t.margin_asset, Decimal(0)) + _money(t.pnl) - _money(t.fees)
        balances[t.margin_asset] = balance
        rows.append((t, balance))
    return rows


def _ratio(value: float, places: int = 6) -> float:
    return round(value, places)


def _asset_view(result: BacktestResult, asset: str) -> dict[str, Any]:
    """One margin asset in its own terms: balances, realised and unrealised PnL, fees, return, drawdown."""
    trades = [t for t in result.trades if t.margin_asset == asset]
    open_fees = sum(
        (_money(p.entry_fee) for p in result.open_positions if p.margin_asset == asset), Decimal(0)
    )
    initial = _money(result.initial_balances.get(asset, 0.0))
    net = sum((_money(t.pnl) - _money(t.fees) for t in trades), Decimal(0))
    wallet = initial + net - open_fees
    curve = result.equity.by_asset.get(asset) if result.equity is not None else None
    equity = _money(float(curve[-1])) if curve is not None and len(curve) else wallet
    return {
        "initial": float(initial),
        "final": float(wallet),
        "net_pnl": float(net),
        "fees": float(sum((_money(t.fees) for t in trades), open_fees)),
        "unrealized_pnl": float(equity - wallet),
        "equity": float(equity),
        "return_pct": _ratio(float((equity - initial) / initial * 100), 4) if initial else 0.0,
        "max_drawdown_pct": _ratio(max_drawdown_pct(curve), 4) if curve is not None else 0.0,
    }


def _open_row(p: OpenPosition, mark: float | None) -> dict[str, Any]:
    unrealized = None if mark is None else float(_money(p.unrealized(mark)))
    return {
        "symbol": p.symbol, "direction": p.direction.value, "quantity": str(p.quantity),
        "signal_open_time_ms": p.signal_open_time_ms, "entry_time_ms": p.entry_time_ms,
        "entry_price": p.entry_price, "stop_loss": p.stop_loss, "take_profit": p.take_profit,
        "margin_asset": p.margin_asset, "entry_fee": float(_money(p.entry_fee)), "mark": mark,
        "unrealized_pnl": unrealized,
    }  # fmt: skip


def summarize(result: BacktestResult, *, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The summary.json document (field meanings in the README, the same for a backtest and a report).

    With one margin asset the headline numbers are in it; with several (USDT and coins) they are the USD
    view, and each asset's own numbers are under ``balances``. A coin-margined run also gets a ``usd`` view,
    labelled as such."""
    trades = result.trades
    assets = list(dict.fromkeys([*result.initial_balances, *(t.margin_asset for t in trades)]))
    views = {a: _asset_view(result, a) for a in assets}
    one = assets[0] if len(assets) == 1 else None
    nets = [t.net_pnl if one else t.net_pnl_usd for t in trades]
    wins = [n for n in nets if n > 0]
    gross_loss = -sum(n for n in nets if n <= 0)
    usd = _usd_view(result)
    head = views[one] if one else usd
    reasons = Counter(d.reason.value if d.reason is not None else "taken" for d in result.decisions)
    marks = result.equity.last_marks if result.equity is not None else {}
    seconds = result.engine_seconds
    speed = round(result.klines / seconds) if result.klines and seconds > 0 else None
    summary: dict[str, Any] = {
        "klines": result.klines,
        "crossovers": len(result.decisions),
        "trades": len(trades),
        "open_positions": len(result.open_positions),
        "currency": one or "USD",
        "win_rate": _ratio(len(wins) / len(trades)) if trades else 0.0,
        "profit_factor": _ratio(sum(wins) / gross_loss) if gross_loss > 0 else None,
        "max_drawdown_pct": head["max_drawdown_pct"],
        "net_pnl": head["net_pnl"],
        "fees": head["fees"],
        "return_pct": head["return_pct"],
        "klines_per_second": speed,
        "decisions_by_reason": dict(sorted(reasons.items())),
        "entries_rejected": len(result.rejections),
        "rejections_by_reason": dict(Counter(r.reason.value for r in result.rejections)),
        "exits_by_reason": dict(Counter(str(t.exit_reason) for t in trades)),
        "balances": views,
        "still_open": [_open_row(p, marks.get(p.symbol)) for p in result.open_positions],
        "equity_marked": "at every candle close"
        if result.equity is None or result.equity.marked
        else "at entries and exits only (no candles at hand)",
        "engine": result.engine,
        "symbols": list(result.symbols),
    }
    if any(a != "USDT" for a in assets):
        summary["usd"] = usd
    if extra:
        summary.update(extra)
    return summary


def _usd_view(result: BacktestResult) -> dict[str, Any]:
    curve = result.equity.usd if result.equity is not None else None
    initial = float(curve[0]) if curve is not None and len(curve) else sum(result.initial_balances.values())
    final = float(curve[-1]) if curve is not None and len(curve) else initial
    return {
        "net_pnl": float(_money(sum(t.net_pnl_usd for t in result.trades))),
        "fees": float(_money(sum(t.fees_usd for t in result.trades))),
        "return_pct": _ratio((final - initial) / initial * 100.0, 4) if initial else 0.0,
        "max_drawdown_pct": _ratio(max_drawdown_pct(curve), 4) if curve is not None else 0.0,
        "valuation": "USDT at 1, a coin at the close of its COIN-M symbol at each candle close",
    }


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """Where the report files went."""

    summary: Path
    trades: Path
    decisions: Path
    equity: Path | None
    """None when no chart was drawn (``plot=False``, or matplotlib is not installed)."""


def write_csv(path: Path, header: Sequence[str], rows: Sequence[list[str]]) -> None:
    """Write atomically: a crash never leaves a half-written report under the final name."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    tmp.replace(path)


def plotting_missing() -> str | None:
    """Why equity.png cannot be drawn in this environment, or None when matplotlib is importable."""
    return PLOT_MISSING if importlib.util.find_spec("matplotlib") is None else None


def chart_title(label: str, result: BacktestResult, summary: dict[str, Any]) -> str:
    """What ran, over which period, what it returned and its worst drawdown: the chart's title."""
    times = result.equity.times if result.equity is not None else None
    if times is not None and len(times):
        first, last = (datetime.fromtimestamp(int(t) / 1000, tz=UTC) for t in (times[0], times[-1]))
        period = f"{first:%Y-%m-%d %H:%M} → {last:%Y-%m-%d %H:%M} UTC"
    else:
        period = "no candles"
    symbols = ", ".join(result.symbols) or "no symbols"
    head = f"return {summary['return_pct']:+.2f}%, max drawdown {summary['max_drawdown_pct']:.2f}%"
    return f"{label}: {symbols}\n{period} · {head} ({summary['currency']})"


def write_reports(
    result: BacktestResult,
    out_dir: Path,
    *,
    title: str,
    extra: dict[str, Any] | None = None,
    plot: bool = True,
) -> tuple[ReportPaths, dict[str, Any]]:
    """Write the report files into ``out_dir`` (created if needed); equity.png only when ``plot`` and
    matplotlib is installed (else ``summary["skipped"]`` says why). ``title`` names the run's kind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    missing = plotting_missing() if plot else None
    paths = ReportPaths(
        summary=out_dir / "summary.json",
        trades=out_dir / "trades.csv",
        decisions=out_dir / "decisions.csv",
        equity=out_dir / "equity.png" if plot and missing is None else None,
    )
    ordered = sorted(
        result.decisions, key=lambda d: (d.decided_open_time_ms, d.symbol, d.signal_open_time_ms)
    )
    write_csv(paths.decisions, DECISION_COLUMNS, [decision_row(d) for d in ordered])
    write_csv(paths.trades, TRADE_COLUMNS, [trade_row(t, b) for t, b in closed_trades(result)])
    summary = summarize(result, extra=extra)
    if paths.equity is not None and result.equity is not None:
        curve = result.equity
        one = summary["currency"]
        values = curve.by_asset.get(one, curve.usd)
        plot_equity(
            paths.equity, title=chart_title(title, result, summary), currency=one, times=curve.times,
            values=values, trades=result.trades, still_open=result.open_positions,
        )  # fmt: skip
    if missing is not None:
        summary["skipped"] = {"equity.png": missing}
    tmp = paths.summary.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(paths.summary)
    return paths, summary


def _shown(amount: float, currency: str) -> str:
    """Cents for USDT and USD, satoshis for a coin."""
    return f"{amount:.2f}" if currency in {"USDT", "USD"} else f"{amount:.8f}"


def render_summary(summary: dict[str, Any], paths: ReportPaths | None = None) -> str:
    """The one-screen text summary printed after a run."""
    pf = summary["profit_factor"]
    kps = summary.get("klines_per_second")
    cur = summary["currency"]
    net = _shown(summary["net_pnl"], cur)
    klines = summary["klines"]
    lines = [
        f"klines           {'-' if klines is None else f'{klines:,}':>12}",
        f"crossovers       {summary['crossovers']:>12,}",
        (
            f"trades           {summary['trades']:>12,}   rejected entries {summary['entries_rejected']}, "
            f"still open {summary['open_positions']}"
        ),
        f"win rate         {summary['win_rate'] * 100:>11.1f}%",
        f"profit factor    {'n/a' if pf is None else f'{pf:.2f}':>12}",
        f"max drawdown     {summary['max_drawdown_pct']:>11.2f}%   {cur}, marked {summary['equity_marked']}",
        f"{f'net PnL ({cur})':<17}{net:>12}   fees {_shown(summary['fees'], cur)}",
        f"return           {summary['return_pct']:>11.2f}%",
    ]
    if kps:
        lines.append(f"speed            {kps:>12,.0f} klines/s ({summary['engine']} engine)")
    reasons = ", ".join(f"{k} {v}" for k, v in summary["decisions_by_reason"].items())
    lines.append(f"decisions        {reasons or '-'}")
    for asset, bal in summary["balances"].items():
        lines.append(
            f"balance {asset:<8} {bal['initial']:>12.4f} → {bal['final']:.4f}   equity {bal['equity']:.4f}, "
            f"return {bal['return_pct']:+.2f}%, max drawdown {bal['max_drawdown_pct']:.2f}%"
        )
    usd = summary.get("usd")
    if usd is not None:
        lines.append(
            f"USD view         net PnL {usd['net_pnl']:.2f}, return {usd['return_pct']:+.2f}%, "
            f"max drawdown {usd['max_drawdown_pct']:.2f}% ({usd['valuation']})"
        )
    for p in summary.get("still_open", []):
        pnl = p["unrealized_pnl"]
        unrealized = (
            "" if pnl is None else f", unrealised {_shown(pnl, p['margin_asset'])} {p['margin_asset']}"
        )
        lines.append(
            f"still open       {p['symbol']} {p['direction']} {p['quantity']} at {p['entry_price']} "
            f"(stop {p['stop_loss']}, take-profit {p['take_profit']}), last close {p['mark']}{unrealized}"
        )
    if paths is not None:
        lines.append(f"reports          {paths.summary.parent}")
    lines.extend(f"{name} skipped: {why}" for name, why in summary.get("skipped", {}).items())
    synthetic = summary.get("synthetic_filters") or []
    if synthetic:
        lines.append(
            f"filters          SYNTHESISED for {', '.join(synthetic)} (not Binance's; see --exchange-info)"
        )
    return "\n".join(lines)
