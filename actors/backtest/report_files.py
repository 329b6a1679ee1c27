"""Backtest and ledger reports: summary.json, trades.csv, decisions.csv, equity.png and a one-screen summary.

The live ``report`` command writes the same files from the ledger, so a user can diff what the bot did
against what the backtest said. Floats are written with ``repr`` (shortest exact round-trip), so equal
values give byte-equal files. equity.png needs matplotlib, the optional ``plot`` extra: without it the
other files are written and the summary (file and screen) says the chart was skipped and why.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..domain.model import Decision
    from .engine import BacktestResult, Trade

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


def trade_row(t: Trade) -> list[str]:
    """One trades.csv row."""
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
        t.exit_reason.value,
        t.margin_asset,
        _num(t.pnl),
        _num(t.fees),
        _num(t.net_pnl),
        _num(t.balance_after),
    ]


def max_drawdown_pct(equity: Sequence[tuple[int, float]]) -> float:
    """Largest peak-to-trough fall of the equity curve, in % of the peak."""
    peak = -math.inf
    worst = 0.0
    for _, value in equity:
        peak = max(peak, value)
        if peak > 0:
            worst = max(worst, (peak - value) / peak * 100.0)
    return worst


def summarize(result: BacktestResult, *, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The summary.json document."""
    trades = result.trades
    wins = [t.net_pnl_usd for t in trades if t.net_pnl_usd > 0]
    losses = [t.net_pnl_usd for t in trades if t.net_pnl_usd <= 0]
    gross_loss = -sum(losses)
    initial = result.equity[0][1] if result.equity else 0.0
    net = sum(t.net_pnl_usd for t in trades)
    fees_usd = sum(t.fees_usd for t in trades)
    reasons = Counter(d.reason.value if d.reason is not None else "taken" for d in result.decisions)
    per_asset = {
        asset: {
            "initial": result.initial_balances.get(asset, 0.0),
            "final": result.final_balances.get(asset, 0.0),
            "net_pnl": sum(t.net_pnl for t in trades if t.margin_asset == asset),
            "fees": sum(t.fees for t in trades if t.margin_asset == asset),
        }
        for asset in result.initial_balances
    }
    summary: dict[str, Any] = {
        "klines": result.klines,
        "crossovers": len(result.decisions),
        "trades": len(trades),
        "win_rate": len(wins) / len(trades) if trades else 0.0,
        "profit_factor": (sum(wins) / gross_loss) if gross_loss > 0 else None,
        "max_drawdown_pct": max_drawdown_pct(result.equity),
        "net_pnl": net,
        "fees": fees_usd,
        "return_pct": net / initial * 100.0 if initial else 0.0,
        "klines_per_second": result.klines / result.engine_seconds if result.engine_seconds > 0 else None,
        "decisions_by_reason": dict(sorted(reasons.items())),
        "entries_rejected": len(result.rejections),
        "rejections_by_reason": dict(Counter(r.reason.value for r in result.rejections)),
        "exits_by_reason": dict(Counter(t.exit_reason.value for t in trades)),
        "balances": per_asset,
        "engine": result.engine,
        "valuation": "USD: USDT at 1, COIN-M coins at their last exit price (first close before any exit)",
    }
    if extra:
        summary.update(extra)
    return summary


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


def plot_equity(equity: Sequence[tuple[int, float]], path: Path, title: str) -> None:
    """Equity and drawdown, one above the other."""
    import matplotlib as mpl  # noqa: PLC0415 - importing pyplot costs ~0.3 s; only reports need it

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    times = [datetime.fromtimestamp(t / 1000, tz=UTC) for t, _ in equity]
    values = [v for _, v in equity]
    peak = -math.inf
    dd = []
    for v in values:
        peak = max(peak, v)
        dd.append(-(peak - v) / peak * 100.0 if peak > 0 else 0.0)
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6), height_ratios=(3, 1))
    top.step(times, values, where="post", color="tab:blue")
    top.set_ylabel("equity (USD)")
    top.set_title(title)
    top.grid(alpha=0.3)
    bottom.fill_between(times, dd, 0, step="post", color="tab:red", alpha=0.4)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)


def write_reports(
    result: BacktestResult,
    out_dir: Path,
    *,
    title: str,
    extra: dict[str, Any] | None = None,
    plot: bool = True,
) -> tuple[ReportPaths, dict[str, Any]]:
    """Write the report files into ``out_dir`` (created if needed); equity.png only when ``plot`` and
    matplotlib is installed (else ``summary["skipped"]`` says why)."""
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
    write_csv(paths.trades, TRADE_COLUMNS, [trade_row(t) for t in result.trades])
    if paths.equity is not None:
        plot_equity(result.equity, paths.equity, title)
    summary = summarize(result, extra=extra)
    if missing is not None:
        summary["skipped"] = {"equity.png": missing}
    tmp = paths.summary.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(paths.summary)
    return paths, summary


def render_summary(summary: dict[str, Any], paths: ReportPaths | None = None) -> str:
    """The one-screen text summary printed after a run."""
    pf = summary["profit_factor"]
    kps = summary.get("klines_per_second")
    lines = [
        f"klines           {summary['klines']:>12,}",
        f"crossovers       {summary['crossovers']:>12,}",
        f"trades           {summary['trades']:>12,}   rejected entries {summary['entries_rejected']}",
        f"win rate         {summary['win_rate'] * 100:>11.1f}%",
        f"profit factor    {'n/a' if pf is None else f'{pf:.2f}':>12}",
        f"max drawdown     {summary['max_drawdown_pct']:>11.2f}%",
        f"net PnL (USD)    {summary['net_pnl']:>12.2f}   fees {summary['fees']:.2f}",
        f"return           {summary['return_pct']:>11.2f}%",
    ]
    if kps:
        lines.append(f"speed            {kps:>12,.0f} klines/s ({summary['engine']} engine)")
    reasons = ", ".join(f"{k} {v}" for k, v in summary["decisions_by_reason"].items())
    lines.append(f"decisions        {reasons or '-'}")
    for asset, bal in summary["balances"].items():
        lines.append(f"balance {asset:<8} {bal['initial']:>12.4f} → {bal['final']:.4f}")
    if paths is not None:
        lines.append(f"reports          {paths.summary.parent}")
    lines.extend(f"{name} skipped: {why}" for name, why in summary.get("skipped", {}).items())
    synthetic = summary.get("synthetic_filters") or []
    if synthetic:
        lines.append(
            f"filters          SYNTHESISED for {', '.join(synthetic)} (not Binance's; see --exchange-info)"
        )
    return "\n".join(lines)
