"""Feeds ``Metrics`` from the running bot: scrape-time providers over snapshots, a pump for cumulative counts.

Snapshot values (positions, mailboxes, weight, parked pairs, unrepaired gaps, replay progress) are read
when Prometheus scrapes. Counts the actors and boards keep cumulatively (WebSocket frames and
reconnects, sequencer gaps and backfills, 429/418 answers, reconciliation discrepancies, supervisor
restarts) become counter increments in a pump thread once a second, so counters stay monotonic across
actor restarts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from loguru import logger

from ..domain.model import Direction
from ..runtime.actor import DIRECTORY
from ..runtime.status import GroupState
from .metric_families import WsState
from .metrics import Metrics
from .metrics_server import MetricsServer
from .warmup_progress import warmup_state

if TYPE_CHECKING:
    from .bot_view import RunningBot


class MetricsFeed:
    """Owns the registry, the HTTP endpoint and the pump of one bot process."""

    def __init__(self, bot: RunningBot) -> None:
        config = bot.config
        self.bot = bot
        self.metrics = Metrics(mode=config.api.mode.value)
        self.server = MetricsServer.from_settings(config.monitoring, self.metrics, health=self._healthy)
        self._last: dict[tuple[str, ...], float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        m = self.metrics
        m.provide("active_positions", self._positions)
        m.provide("unrealized_pnl", self._unrealized)
        m.provide("actor_mailbox_depth", lambda: {n: s.mailbox for n, s in DIRECTORY.stats().items()})
        m.provide("actor_last_message_age_seconds", self._ages)
        m.provide("request_weight_used", self._weight)
        m.provide("pair_parked", self._parked)
        m.provide("candle_gaps_unrepaired", self._unrepaired)
        m.provide("replay_progress_ratio", self._progress)
        m.provide("warmup_pairs", self._warmup)
        m.provide("startup_seconds", lambda: bot.ready_after_s or 0.0)
        m.provide("trades_closed", self._trades_closed)
        m.provide("realized_pnl", self._realized)
        m.provide("fees_paid", self._fees)
        m.provide("wallet_balance", self._wallets)
        m.provide("equity", self._equity)
        m.provide("position_size", self._position_sizes)
        m.provide("position_entry_price", lambda: self._levels("entry_price"))
        m.provide("position_stop_price", lambda: self._levels("stop_loss"))
        m.provide("position_take_profit_price", lambda: self._levels("take_profit"))
        m.process_started(tuple(c.value for c in bot.connections.contracts))
        self._configured: frozenset[tuple[str, tuple[str, ...]]] = frozenset()
        self._configure()

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> int | None:
        port = self.server.start() if self.server is not None else None
        self._thread = threading.Thread(target=self._pump_loop, name="metrics-pump", daemon=True)
        self._thread.start()
        return port

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self.server is not None:
            self.server.stop()

    def _healthy(self) -> bool:
        """``/healthz``: the tree runs, every shared actor lives, and no essential thread died."""
        status = self.bot.status()
        shared_ok = status.shared is not None and all(c.alive for c in status.shared.children)
        return status.state.value == "running" and shared_ok and self.bot.threads.essential_alive()

    # ---- providers (scrape thread; snapshot reads only) ------------------------------------------

    def _positions(self) -> Mapping[str, float]:
        counts = {c.value: 0.0 for c in self.bot.connections.contracts}
        for p in self.bot.snapshots.positions():
            counts[p.contract_type.value] = counts.get(p.contract_type.value, 0.0) + 1
        return counts

    def _unrealized(self) -> Mapping[str, float]:
        out = {}
        bot = self.bot
        for p in bot.snapshots.positions():
            tick = bot.boards[p.contract_type].prices.get(p.symbol) if p.contract_type in bot.boards else None
            spec = bot.connections.specs.get(p.symbol)
            if tick is None or spec is None:
                continue
            from ..domain.fills import pnl  # noqa: PLC0415 - keeps this module's import graph small

            out[p.symbol] = pnl(spec, Direction(p.direction), Decimal(str(p.qty)), p.entry_price, tick.price)
        return out

    def _margin_assets(self) -> dict[str, str]:
        """Margin asset of every configured pair (USDT, or the coin of a COIN-M pair)."""
        specs = self.bot.connections.specs
        return {s: specs[s].margin_asset for s in self.bot.settings if s in specs}

    def _trades_closed(self) -> Mapping[tuple[str, str], float]:
        out = {(s, reason): 0.0 for s in self.bot.settings for reason in ("stop_loss", "take_profit")}
        out.update({k: float(n) for k, n in self.bot.snapshots.money().closed.items()})
        return out

    def _realized(self) -> Mapping[tuple[str, str], float]:
        out = dict.fromkeys(self._margin_assets().items(), 0.0)
        out.update({k: float(v) for k, v in self.bot.snapshots.money().realized_pnl.items()})
        return out

    def _fees(self) -> Mapping[tuple[str, str], float]:
        out = dict.fromkeys(self._margin_assets().items(), 0.0)
        out.update({k: float(v) for k, v in self.bot.snapshots.money().fees.items()})
        return out

    def _wallets(self) -> Mapping[str, float]:
        wallets = self.bot.balances.wallets()
        return {a: wallets[a] for a in set(self._margin_assets().values()) if a in wallets}

    def _equity(self) -> Mapping[str, float]:
        """Wallet plus the unrealised PnL of the open positions margined in the same asset."""
        out = {asset: Decimal(repr(wallet)) for asset, wallet in self._wallets().items()}
        assets = self._margin_assets()
        for symbol, value in self._unrealized().items():
            asset = assets.get(symbol)
            if asset is not None and asset in out:
                out[asset] += Decimal(repr(value))  # in decimals: no 9965.823035200001
        return {asset: float(value) for asset, value in out.items()}

    def _position_sizes(self) -> Mapping[str, float]:
        out = dict.fromkeys(self.bot.settings, 0.0)
        for p in self.bot.snapshots.positions():
            out[p.symbol] = float(p.qty) * Direction(p.direction).sign
        return out

    def _levels(self, field: str) -> Mapping[str, float]:
        """The entry, stop-loss or take-profit of each open position (no series while flat)."""
        levels = ((p.symbol, getattr(p, field)) for p in self.bot.snapshots.positions())
        return {symbol: float(level) for symbol, level in levels if level is not None}

    def _weight(self) -> Mapping[str, float]:
        bot = self.bot
        return {c.value: float(bot.connections.budget.used_weight) for c in bot.connections.contracts}

    def _ages(self) -> Mapping[str, float]:
        now = time.monotonic()
        return {
            n: now - s.last_message_monotonic
            for n, s in DIRECTORY.stats().items()
            if s.last_message_monotonic is not None
        }

    def _parked(self) -> Mapping[str, float]:
        return {g.name: 1.0 if g.state is GroupState.PARKED else 0.0 for g in self.bot.status().groups}

    def _unrepaired(self) -> Mapping[tuple[str, str], float]:
        return {k: 1.0 if st.unrepaired_gap else 0.0 for k, st in self.bot.pair_board.statuses.items()}

    def _warmup(self) -> Mapping[str, float]:
        bot = self.bot
        keys = [(s.symbol, tf) for s in bot.settings.values() for tf in s.indicator_timeframes]
        state = warmup_state(bot.pair_board, keys)
        return {"warm": float(state.pairs_warm), "warming": float(state.pairs - state.pairs_warm)}

    def _progress(self) -> float:
        exchange = self.bot.connections.exchange
        if exchange is None:
            return 0.0
        status = exchange.status()
        done, left = int(status.get("processed", 0)), int(status.get("remaining", 0))
        return done / (done + left) if done + left else 1.0

    # ---- pump (cumulative counts → counter increments) -------------------------------------------

    def _delta(self, key: tuple[str, ...], total: float) -> float:
        before = self._last.get(key, 0.0)
        self._last[key] = total
        return total - before if total >= before else total

    def _pump_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.bot.threads.check()
                self.metrics.flush()
                self.pump()
            except Exception as exc:
                self.metrics.error("metrics", type(exc).__name__)
                logger.debug(f"metrics pump: {exc!r}")

    def pump(self) -> None:
        """One pass: convert every cumulative count into counter increments (also called by tests)."""
        m, bot = self.metrics, self.bot
        c = m.counters
        for contract, board in bot.boards.items():
            market = contract.value
            snap = board.snapshot()
            states = {conn.state.value for conn in snap.connections}
            if "up" in states or "connected" in states:
                m.websocket_state(market, WsState.CONNECTED)
            elif states:
                m.websocket_state(market, WsState.CONNECTING)
            else:
                m.websocket_state(market, WsState.DISCONNECTED)
            for kind, n in snap.messages.items():
                if d := self._delta(("ws", market, kind), n):
                    c["websocket_messages_received"].labels(market=market, type=kind).inc(d)
            if d := self._delta(("reconnects", market), snap.reconnects):
                c["websocket_reconnects"].labels(market=market).inc(d)
            for (symbol, interval), n in snap.sequencer.gaps_by_key.items():
                if d := self._delta(("gaps", market, symbol, interval), n):
                    m.gap_detected(symbol, interval, int(d))
            for (symbol, interval), n in snap.sequencer.backfilled_by_key.items():
                if d := self._delta(("backfilled", market, symbol, interval), n):
                    m.candles_backfilled(symbol, interval, int(d))
            handed = (
                ("here", snap.handoffs_here),
                ("finished", snap.handoffs - snap.handoffs_here - snap.handoff_timeouts),
                ("timeout", snap.handoff_timeouts),
            )
            for outcome, total in handed:
                if d := self._delta(("handoff", market, outcome), total):
                    m.candle_handoff(market, outcome, int(d))
        budget = bot.connections.budget
        for code, total in (("429", budget.responses_429), ("418", budget.responses_418)):
            if d := self._delta(("rate", code), total):
                c["rate_limit_responses"].labels(code=code).inc(d)
        for kind, n in bot.snapshots.discrepancies().items():
            if d := self._delta(("discrepancy", kind), n):
                c["reconciliation_discrepancies"].labels(kind=kind).inc(d)
        priority = bot.priority.stats()
        for outcome, total in (("sent", priority.ended), ("expired", priority.expired)):
            if d := self._delta(("priority", outcome), total):
                m.entry_priority(outcome, int(d))
        status = self.bot.status()
        for group in ([status.shared] if status.shared else []) + list(status.groups):
            for child in group.children:
                restarts = c["actor_restarts"].labels(actor=child.child_id)  # at 0 from the start
                if d := self._delta(("restarts", child.child_id), max(0, child.generation - 1)):
                    restarts.inc(d)
        self._configure()

    def _configure(self) -> None:
        """Series at 0 for every configured pair, at start and for the pairs a reload adds."""
        configured = frozenset((s.symbol, s.indicator_timeframes) for s in self.bot.settings.values())
        for symbol, timeframes in configured - self._configured:
            self.metrics.configured(symbol, timeframes)
        self._configured = configured
