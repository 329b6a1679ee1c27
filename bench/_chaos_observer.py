"""The chaos soak's independent observer: what the exchange says, never what the bot's ledger believes.

- the exchange's own orders (``/sim/v1/orders``): entries per signal, entries added to an open position, and
  the realised PnL of each (the money the ledger's trades must add up to);
- the exchange's own record of positions without a stop, on its wall clock (``/sim/v1/exposure``);
- the exchange's user-data stream, on a connection of the observer's own (a second opinion on fills);
- after each recovery, whether the bot's ledger holds what the exchange holds (read only, from outside);
- whether every actor is alive, or its pair parked with an alert (through the control socket).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import requests
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from nancemakina.actors.cli.control_client import ControlClient
from nancemakina.actors.sim.config import DEFAULT_API_KEY
from nancemakina.actors.sim.remote import RemoteExchange
from nancemakina.actors.tree.ledger.ledger_store import LedgerStore, LedgerStoreError
from nancemakina.actors.tree.ledger.reconciliation import parse_client_id


@dataclass(slots=True)
class Check:
    """One check of an invariant at a moment of the run."""

    at: float
    what: str
    ok: bool
    seconds: float = 0.0
    """How long it took to hold (ledger = exchange converges after a recovery)."""
    detail: str = ""


@dataclass(slots=True)
class Findings:
    checks: list[Check] = field(default_factory=list)
    entries: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    """(symbol, signal) → order ids of its FILLED entries on the exchange."""
    stream: Counter[str] = field(default_factory=Counter)
    stream_entries: set[str] = field(default_factory=set)
    realized: dict[int, tuple[str, float]] = field(default_factory=dict)
    """Order id → (symbol, realised PnL) of every regular order on the exchange: its own money record."""


class Observer:
    """Watches one exchange (and the bot's files from outside) for the length of a run."""

    def __init__(self, remote: RemoteExchange, state_dir: Path, socket: Path, started: float) -> None:
        self.remote = remote
        self.state_dir = state_dir
        self.socket = socket
        self.started = started
        self.found = Findings()
        self._halt = threading.Event()
        self._last_order = 0
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._poll_orders, name="observer-orders", daemon=True),
            threading.Thread(target=self._listen, name="observer-stream", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._halt.set()
        for thread in self._threads:
            thread.join(10)
        self._read_orders()

    def now(self) -> float:
        return time.monotonic() - self.started

    # ---- the exchange's orders -------------------------------------------------------------------------

    def _poll_orders(self) -> None:
        while not self._halt.wait(0.5):
            try:
                self._read_orders()
            except requests.RequestException:
                continue

    def _read_orders(self) -> None:
        for order in self.remote.orders(self._last_order):
            self._last_order = max(self._last_order, order["orderId"])
            self.found.realized[order["orderId"]] = (order["symbol"], float(order["realizedPnl"]))
            parsed = parse_client_id(order["clientOrderId"])
            if parsed is None or order["reduceOnly"] or order["status"] != "FILLED":
                continue
            symbol, signal, leg = parsed
            if leg.value == "E":
                with self._lock:
                    self.found.entries.setdefault((symbol, signal), []).append(order["orderId"])

    # ---- the exchange's user-data stream, on the observer's own connection --------------------------------

    def _listen(self) -> None:
        http = requests.Session()
        http.trust_env = False
        while not self._halt.is_set():
            try:
                key = http.post(
                    f"{self.remote.rest_url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": DEFAULT_API_KEY},
                    timeout=5,
                ).json()["listenKey"]  # fmt: skip
                with connect(f"{self.remote.ws_url}private/ws?listenKey={key}", open_timeout=5) as ws:
                    while not self._halt.is_set():
                        try:
                            self._event(ws.recv(timeout=0.5))
                        except TimeoutError:
                            continue
            except (OSError, WebSocketException, requests.RequestException, KeyError, ValueError):
                self.found.stream["reconnects"] += 1
                self._halt.wait(0.5)

    def _event(self, raw: str | bytes) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            self.found.stream["malformed"] += 1
            return
        kind = str(event.get("e", "?")) if isinstance(event, dict) else "?"
        self.found.stream[kind] += 1
        order = event.get("o", {}) if kind == "ORDER_TRADE_UPDATE" else {}
        if order.get("X") == "FILLED" and str(order.get("c", "")).endswith("-E"):
            self.found.stream_entries.add(order["c"])

    # ---- checks ------------------------------------------------------------------------------------------

    def exchange_positions(self) -> dict[str, Decimal]:
        return {s: Decimal(p["amount"]) for s, p in self.remote.state()["positions"].items()}

    def ledger_positions(self) -> dict[str, Decimal] | None:
        try:
            store = LedgerStore.open_read_only(self.state_dir / "ledger.sqlite3")
        except LedgerStoreError:
            return None
        try:
            return {
                p.symbol: p.qty if p.direction.value == "LONG" else -p.qty for p in store.open_positions()
            }
        finally:
            store.close()

    def check_ledger(self, why: str, timeout_s: float) -> Check:
        """Ledger = exchange, within ``timeout_s`` (both move: the bot trades on during the check)."""
        start = time.monotonic()
        exchange: dict[str, Decimal] = {}
        held: dict[str, Decimal] | None = None
        while True:
            exchange, held = self.exchange_positions(), self.ledger_positions()
            if held == exchange:
                check = Check(at=self.now(), what=f"ledger=exchange {why}", ok=True,
                              seconds=time.monotonic() - start)  # fmt: skip
                break
            if time.monotonic() - start > timeout_s:
                check = Check(at=self.now(), what=f"ledger=exchange {why}", ok=False, seconds=timeout_s,
                              detail=f"ledger {held} exchange {exchange}")  # fmt: skip
                break
            time.sleep(0.1)
        self.found.checks.append(check)
        return check

    def check_actors(self, why: str) -> Check:
        """Every actor alive, or its pair parked (and alerted: the ledger records ``alert:pair_parked``)."""
        try:
            client = ControlClient(self.socket, origin="chaos-soak", timeout_s=10.0)
            client.connect()
            try:
                rows = client.call("ls", [])
                health = client.call("health", [])
            finally:
                client.close()
        except Exception as exc:
            check = Check(at=self.now(), what=f"actors {why}", ok=False, detail=f"control socket: {exc}")
            self.found.checks.append(check)
            return check
        parked = set(health["checks"]["parked_pairs"])
        dead = [r["name"] for r in rows if r.get("state") != "running" and r.get("symbol") not in parked]
        alerted = self._parked_alerts()
        unalerted = sorted(parked - alerted)
        ok = not dead and not unalerted and health["checks"]["shared_actors_alive"]
        detail = f"dead {dead}" if dead else (f"parked without alert {unalerted}" if unalerted else "")
        check = Check(at=self.now(), what=f"actors {why}", ok=bool(ok), detail=detail)
        self.found.checks.append(check)
        return check

    def _parked_alerts(self) -> set[str]:
        try:
            store = LedgerStore.open_read_only(self.state_dir / "ledger.sqlite3")
        except LedgerStoreError:
            return set()
        try:
            return {e.symbol for e in store.events(10_000, kind="alert:pair_parked") if e.symbol}
        finally:
            store.close()
