"""The running bot as the inspection shell sees it: every answer is built from snapshots, never a mailbox."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ..messages import PauseEntries, ResumeEntries
from ..runtime.actor import DIRECTORY, ActorStats
from ..runtime.status import GroupState
from ..tree.ledger.ledger_store import LedgerStore
from .control_commands import ControlError
from .thread_times import thread_kinds

if TYPE_CHECKING:
    from ..tree.pair_timeframe import PairStatus
    from .bot_view import RunningBot


def _kline(k: Any) -> dict[str, Any]:
    return {
        "open_time_ms": k.open_time_ms,
        "open": k.open,
        "high": k.high,
        "low": k.low,
        "close": k.close,
        "volume": k.volume,
    }


def _decision(d: Any) -> dict[str, Any] | None:
    if d is None:
        return None
    return {
        "symbol": d.symbol,
        "timeframe": d.timeframe,
        "signal_open_time_ms": d.signal_open_time_ms,
        "decided_open_time_ms": d.decided_open_time_ms,
        "direction": d.direction.value,
        "decision": d.outcome.value,
        "reason": d.reason.value if d.reason is not None else None,
        "entry": d.entry,
        "stop_loss": d.stop_loss,
        "take_profit": d.take_profit,
    }


class Inspection:
    """Implements the control socket's ``ControlTarget`` for a running bot."""

    def __init__(self, bot: RunningBot) -> None:
        self.bot = bot
        self.paused: set[str] = set()
        self._lock = threading.Lock()
        self._last_counts: dict[str, tuple[int, float]] = {}

    # ---- helpers ---------------------------------------------------------------------------------

    def _symbols(self) -> list[str]:
        return sorted(self.bot.settings)

    def _check(self, symbol: str) -> None:
        if symbol not in self.bot.settings:
            raise ControlError(f"unknown pair {symbol} (pairs: {', '.join(self._symbols()) or 'none'})")

    def _rate(self, name: str, messages: int, now: float) -> float:
        with self._lock:
            before = self._last_counts.get(name)
            self._last_counts[name] = (messages, now)
        if before is None or now <= before[1] or messages < before[0]:
            return 0.0  # first look, or a new incarnation restarted the counter
        return (messages - before[0]) / (now - before[1])

    def _store(self) -> LedgerStore:
        return LedgerStore.open_read_only(self.bot.config.state_path() / "ledger.sqlite3")

    # ---- ControlTarget ---------------------------------------------------------------------------

    def actor_tree(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        status = self.bot.status()
        stats = DIRECTORY.stats()
        rows: list[dict[str, Any]] = [
            {"name": "root", "kind": "RootSupervisor", "parent": None, "state": status.state.value,
             "mailbox": 0, "msgs_per_s": 0.0, "messages": 0, "restarts": 0,
             "uptime_s": time.time() - self.bot.started_at, "last_message_age_s": None},
        ]  # fmt: skip
        groups = ([status.shared] if status.shared is not None else []) + list(status.groups)
        for group in groups:
            rows.append(self._row(stats.get(group.name), group.name, "Supervisor", "root", now,
                                  state=group.state.value,
                                  restarts=group.total_restarts + group.restarts_asked,
                                  symbol=None if group.name == "shared" else group.name))  # fmt: skip
            for child in group.children:
                actor = next((s for n, s in stats.items() if n.endswith(child.child_id)), None)
                name = actor.name if actor else child.child_id
                rows.append(
                    self._row(
                        actor, name, "Actor", group.name, now,
                        state="running" if child.alive else "dead",
                        restarts=max(0, child.generation - 1),
                        symbol=None if group.name == "shared" else group.name,
                    )
                )  # fmt: skip
        return rows

    def _row(
        self, stats: ActorStats | None, name: str, kind: str, parent: str, now: float, **extra: Any
    ) -> dict[str, Any]:
        row: dict[str, Any] = {"name": name, "kind": kind, "parent": parent, "mailbox": 0, "messages": 0,
                               "msgs_per_s": 0.0, "uptime_s": None, "last_message_age_s": None}  # fmt: skip
        if stats is not None:
            row.update(
                mailbox=stats.mailbox,
                messages=stats.messages,
                msgs_per_s=self._rate(name, stats.messages, now),
                uptime_s=now - stats.started_monotonic,
                last_message_age_s=None
                if stats.last_message_monotonic is None
                else now - stats.last_message_monotonic,
            )
        row.update({k: v for k, v in extra.items() if v is not None})
        return row

    def inspect(self, symbol: str, timeframe: str | None) -> dict[str, Any]:
        self._check(symbol)
        settings = self.bot.settings[symbol]
        if timeframe is not None and timeframe not in settings.indicator_timeframes:
            raise ControlError(
                f"{symbol} has no {timeframe} (timeframes: {', '.join(settings.indicator_timeframes)})"
            )
        statuses: dict[tuple[str, str], PairStatus] = self.bot.pair_board.statuses
        frames = []
        for tf in settings.indicator_timeframes:
            if timeframe is not None and tf != timeframe:
                continue
            st = statuses.get((symbol, tf))
            if st is None:
                frames.append({"timeframe": tf, "warm": False, "unrepaired_gap": False})
                continue
            snap = st.strategy
            frames.append(
                {
                    "timeframe": tf,
                    "trading": st.trading,
                    "candles": snap.candles,
                    "strategy": snap.kind,
                    "sma_short": snap.sma_short,
                    "sma_long": snap.sma_long,
                    "indicators": dict(snap.indicators),
                    "side": snap.side,
                    "last_klines": [_kline(k) for k in snap.recent],
                    "pending": None
                    if snap.pending is None
                    else {**asdict(snap.pending), "remaining": snap.pending_remaining},
                    "last_decision": _decision(st.last_decision),  # live only: never warm-up's
                    "warm": st.warm,
                    "unrepaired_gap": st.unrepaired_gap,
                }
            )
        group = self.bot.status()
        parked = any(g.name == symbol and g.state is GroupState.PARKED for g in group.groups)
        position = next((asdict(p) for p in self.bot.snapshots.positions() if p.symbol == symbol), None)
        return {"symbol": symbol, "timeframes": frames, "paused": symbol in self.paused, "parked": parked,
                "position": position}  # fmt: skip

    def positions(self) -> list[dict[str, Any]]:
        prices = {c: b.prices for c, b in self.bot.boards.items()}
        rows = []
        for p in self.bot.snapshots.positions():
            row = asdict(p)
            tick = prices.get(p.contract_type)
            last = tick.get(p.symbol) if tick is not None else None
            row["mark"] = last.price if last is not None else None
            rows.append(row)
        return rows

    def orders(self) -> list[dict[str, Any]]:
        store = self._store()
        try:
            return [asdict(o) for o in store.orders(open_only=True)]
        finally:
            store.close()

    def decisions(self, symbol: str | None, limit: int) -> list[dict[str, Any]]:
        if symbol is not None:
            self._check(symbol)
        store = self._store()
        try:
            records = store.decisions(symbol=symbol)
        finally:
            store.close()
        return [row for r in records[-limit:] if (row := _decision(r.decision)) is not None]

    def restart_pair(self, symbol: str) -> dict[str, Any]:
        self._check(symbol)
        return {"symbol": symbol, "restarted": self.bot.restart_pair(symbol)}

    def pause_pair(self, symbol: str) -> dict[str, Any]:
        self._check(symbol)
        self.paused.add(symbol)
        self.bot.refs.tell_executor(symbol, PauseEntries(symbol=symbol))
        return {"symbol": symbol, "paused": True}

    def resume_pair(self, symbol: str) -> dict[str, Any]:
        self._check(symbol)
        self.paused.discard(symbol)
        self.bot.refs.tell_executor(symbol, ResumeEntries(symbol=symbol))
        return {"symbol": symbol, "paused": False}

    def reload(self) -> dict[str, Any]:
        result = self.bot.reload()
        if isinstance(result, list):
            raise ControlError("reload refused, running config kept:\n" + "\n".join(result))
        return asdict(result)

    def health(self) -> dict[str, Any]:
        status = self.bot.status()
        shared_ok = status.shared is not None and all(c.alive for c in status.shared.children)
        parked = [g.name for g in status.groups if g.state is GroupState.PARKED]
        gaps = sorted({s for (s, _), st in self.bot.pair_board.statuses.items() if st.unrepaired_gap})
        counters = self.bot.snapshots.counters()
        ws = {c.value: b.snapshot().connections for c, b in self.bot.boards.items()}
        dead = self.bot.threads.check()
        checks = {
            "tree": status.state.value,
            "shared_actors_alive": shared_ok,
            "parked_pairs": parked,
            "unrepaired_gaps": gaps,
            "paused_pairs": sorted(self.paused),
            "naked_position_alerts": counters.get("naked_alerts", 0),
            "reconciliations": counters.get("reconciles", 0),
            "websocket_connections": {k: len(v) for k, v in ws.items()},
            "request_weight_used": self.bot.connections.budget.used_weight,
            "dead_threads": [f"{d.name} ({d.role})" for d in dead],
        }
        if status.state.value != "running" or not shared_ok or any(d.essential for d in dead):
            verdict = "failing"
        elif parked or gaps or dead:
            verdict = "degraded"
        else:
            verdict = "ok"
        return {"status": verdict, "checks": checks}

    def threads(self) -> dict[str, Any]:
        pinned = self.bot.cpu.current
        return {
            "cpu_affinity": sorted(pinned) if pinned is not None else None,
            "cpu_affinity_auto": self.bot.cpu.auto,
            "gil_switch_interval_ms": sys.getswitchinterval() * 1e3,
            "kinds": thread_kinds(),
        }
