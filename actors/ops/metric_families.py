"""Every metric family nancemakina exports: names, help texts and labels, and the label values allowed.

Names follow Prometheus conventions (``nancemakina_`` prefix, base units, ``_total`` counters) and keep the
prototype's families. ``COUNTERS`` are counted where events happen (``Metrics``' helpers), ``SNAPSHOTS``
are read from providers when Prometheus scrapes (``ScrapeCollector``). Label values pass ``clean_label``
(bounded length, conservative characters); labels carry symbols, intervals, actor names and short slugs
only, never request parameters or credentials.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum

PREFIX = "nancemakina"
INDICATOR_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2)
"""Seconds: one talipp SMA update takes tens of µs; past 50 ms is an outlier (the +Inf bucket)."""
OVERFLOW = "_overflow"
ORDER_TYPES = ("MARKET", "STOP_MARKET", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET")
"""``orders_placed``/``orders_filled`` types: entries and closes, stop-losses, take-profits, trailing."""
ALERT_KINDS = (
    "naked_position",
    "stop_failed",
    "take_profit_failed",
    "trailing_stop_failed",
    "entry_unconfirmed",
    "flatten_failed",
    "pair_parked",
    "shared_exhausted",
    "thread_died",
)
"""Operator alerts whose ``alerts_total`` series exist from the start (others appear when first raised)."""

LabelKey = tuple[str, ...]
Reading = float | Mapping[str, float] | Mapping[tuple[str, str], float] | Mapping[LabelKey, float]
"""A provider's answer: a number for an unlabelled family, else values keyed by label value(s)."""


class WsState(StrEnum):
    """States of ``websocket_status``; exactly one is 1 per market."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    ERROR = "error"


SNAPSHOTS: dict[str, tuple[str, LabelKey]] = {
    "active_positions": ("Open positions by contract type.", ("contract_type",)),
    "unrealized_pnl": ("Unrealized PnL of the open position, in its margin asset.", ("symbol",)),
    "actor_mailbox_depth": ("Messages waiting in the actor's mailbox.", ("actor",)),
    "actor_last_message_age_seconds": ("Seconds since the actor last handled a message.", ("actor",)),
    "request_weight_used": ("Request weight used this minute (X-MBX-USED-WEIGHT-1M).", ("market",)),
    "pairs_parked": ("Pairs parked: restart budget exhausted or parked by an operator.", ()),
    "pair_parked": ("1 while the pair is parked, else 0.", ("symbol",)),
    "candle_gaps_unrepaired": (
        "Missing closed candles not yet backfilled (no trades meanwhile).",
        ("symbol", "interval"),
    ),
    "replay_progress_ratio": ("Replay position from the data's start (0) to its end (1).", ()),
    "warmup_pairs": ("Pairs with every timeframe warm (state=warm) and still reading history.", ("state",)),
    "startup_seconds": ("Seconds from process start to READY=1 (every pair warm); 0 before.", ()),
    "realized_pnl": (
        "Realised PnL of the ledger's closed trades (before fees), in the margin asset.",
        ("symbol", "asset"),
    ),
    "wallet_balance": ("Wallet balance of a margin asset, as the exchange last reported it.", ("asset",)),
    "equity": ("Wallet balance plus the open positions' unrealised PnL, per margin asset.", ("asset",)),
    "position_size": ("Open position quantity, signed (negative = short); 0 when flat.", ("symbol",)),
    "position_entry_price": ("Entry price of the open position.", ("symbol",)),
    "position_stop_price": (
        "Stop-loss trigger price of the open position, as the ledger holds it.",
        ("symbol",),
    ),
    "position_take_profit_price": ("Take-profit trigger price of the open position.", ("symbol",)),
}
"""Gauge families read from providers at scrape time, by name without prefix: (help, label names)."""

SNAPSHOT_COUNTERS: dict[str, tuple[str, LabelKey]] = {
    "trades_closed": ("Trades the ledger closed, by exit reason.", ("symbol", "reason")),
    "fees_paid": ("Commissions paid (entries and exits) as the exchange charged them.", ("symbol", "asset")),
}
"""Counter families whose totals the ledger keeps (its whole history), read at scrape time like
``SNAPSHOTS``: name without prefix or ``_total``, (help, label names)."""

COUNTERS: dict[str, tuple[str, LabelKey]] = {
    "errors": ("Errors caught and survived, by module and exception type.", ("module", "type")),
    "websocket_messages_received": ("WebSocket frames received, by market and type.", ("market", "type")),
    "websocket_reconnects": ("WebSocket reconnections, by market.", ("market",)),
    "klines_processed": ("Closed klines fed to a pair's indicators.", ("symbol", "interval")),
    "signals": ("Crossovers seen by the strategy (v1: SMA, v2: EMA).", ("symbol", "strategy", "direction")),
    "decisions": ("Strategy decisions; reason is `taken` or the skip reason.", ("symbol", "reason")),
    "orders_placed": ("Orders sent to the exchange.", ("symbol", "type", "side")),
    "orders_failed": ("Orders or entries rejected or failed, by reason slug.", ("symbol", "reason")),
    "orders_filled": ("Orders filled.", ("symbol", "type", "side")),
    "actor_restarts": ("Actors restarted by their supervisor.", ("actor",)),
    "candle_gaps_detected": ("Gaps detected in the closed-kline sequence.", ("symbol", "interval")),
    "candles_backfilled": ("Closed klines fetched over REST to fill gaps.", ("symbol", "interval")),
    "naked_position_alerts": ("Positions found or left without a stop-loss on the exchange.", ("symbol",)),
    "alerts": ("Operator alerts raised, by kind.", ("kind",)),
    "rate_limit_responses": ("HTTP 429 (back off) and 418 (IP banned) answers from Binance.", ("code",)),
    "reconciliation_discrepancies": ("Ledger vs exchange differences found by reconciliation.", ("kind",)),
    "entry_priority_entries": (
        "Entries the market reader paused for: `sent` within the hold, or `expired` (outlasted it).",
        ("outcome",),
    ),
    "candle_handoffs": (
        (
            "Closed klines the reader decided itself (`here`: the pair was idle), waited on until their pair "
            "`finished`, or gave up on (`timeout`)."
        ),
        ("market", "outcome"),
    ),
}
"""Counter families by name without prefix or ``_total`` (the client appends it): (help, label names)."""

_UNSAFE = re.compile(r"[^\w.:,/@\[\]-]")
_MAX_LABEL_LEN = 96


def clean_label(value: object) -> str:
    """A bounded, printable label value: unexpected characters become ``_``, long values are cut."""
    return _UNSAFE.sub("_", str(value))[:_MAX_LABEL_LEN]
