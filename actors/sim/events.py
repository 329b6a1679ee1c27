"""User-data stream events in Binance's JSON: ORDER_TRADE_UPDATE, TRADE_LITE, ALGO_UPDATE, ACCOUNT_UPDATE.

USDⓈ-M and COIN-M differ as Binance's do: COIN-M events carry the account alias (``i``) and an order's
margin asset (``o.ma``), have no ``gtd``/``si``/``ss``, and COIN-M sends no TRADE_LITE (USDⓈ-M only).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..domain.fills import InstrumentSpec
from ..domain.model import ContractType
from .orders import AlgoOrder, Order, Position
from .wire import ACCOUNT_ALIAS, money, px, qty


def _coin(spec: InstrumentSpec) -> bool:
    return spec.contract_type is ContractType.COIN_M


def order_update(
    spec: InstrumentSpec,
    o: Order,
    *,
    now: int,
    execution: str,
    last_qty: Decimal = Decimal(0),
    last_price: float = 0.0,
    fee: float = 0.0,
    realized: float = 0.0,
) -> dict[str, Any]:
    """``ORDER_TRADE_UPDATE``: ``execution`` NEW, TRADE, CANCELED or EXPIRED."""
    body: dict[str, Any] = {
        "s": o.symbol,
        "c": o.client_id,
        "S": o.side.value,
        "o": o.order_type,
        "f": o.time_in_force,
        "q": qty(spec, o.qty),
        "p": f"{o.price}" if o.price else "0",
        "ap": px(spec, o.avg_price) if o.executed else "0",
        "sp": o.stop_price,
        "x": execution,
        "X": o.status,
        "i": o.order_id,
        "l": qty(spec, last_qty),
        "z": qty(spec, o.executed),
        "L": px(spec, last_price) if last_qty else "0",
    }
    if _coin(spec):
        body["ma"] = spec.margin_asset
    body |= {
        "N": spec.margin_asset,
        "n": money(fee),
        "T": now,
        "t": o.trade_id if last_qty else 0,
        "b": "0",
        "a": "0",
        "m": o.maker if last_qty else False,
        "R": o.reduce_only,
        "wt": o.working_type,
        "ot": o.orig_type,
        "ps": "BOTH",
        "cp": o.close_position,
        "AP": o.activate_price or "0",
        "cr": o.price_rate or "0",
        "rp": money(realized),
        "pP": False,
        "V": "EXPIRE_MAKER",
        "pm": "NONE",
        "er": o.expiry_reason,
    }
    if not _coin(spec):
        body |= {"si": 0, "ss": 0, "gtd": o.good_till}
    head: dict[str, Any] = {"e": "ORDER_TRADE_UPDATE", "T": now, "E": now}
    if _coin(spec):
        head["i"] = ACCOUNT_ALIAS
    return head | {"o": body}


def trade_lite(
    spec: InstrumentSpec, o: Order, *, now: int, last_qty: Decimal, last_price: float
) -> dict[str, Any]:
    """``TRADE_LITE`` (USDⓈ-M): the fill, ahead of its ORDER_TRADE_UPDATE."""
    return {
        "e": "TRADE_LITE",
        "E": now,
        "T": now,
        "s": o.symbol,
        "c": o.client_id,
        "S": o.side.value,
        "q": qty(spec, o.qty),
        "p": f"{o.price}" if o.price else "0.00",
        "i": o.order_id,
        "l": qty(spec, last_qty),
        "L": px(spec, last_price),
        "t": o.trade_id,
        "m": o.maker,
    }


def algo_update(spec: InstrumentSpec, a: AlgoOrder, *, now: int) -> dict[str, Any]:
    """``ALGO_UPDATE`` (the Algo Service's event): NEW, CANCELED, TRIGGERED, FINISHED or EXPIRED."""
    return {
        "e": "ALGO_UPDATE",
        "T": now,
        "E": now,
        "o": {
            "caid": a.client_algo_id,
            "aid": a.algo_id,
            "at": "CONDITIONAL",
            "o": a.order_type,
            "s": a.symbol,
            "S": a.side.value,
            "ps": "BOTH",
            "f": a.time_in_force,
            "q": qty(spec, a.qty),
            "X": a.status,
            "ai": "" if a.actual_order_id is None else str(a.actual_order_id),
            "ap": px(spec, a.avg_price) if a.executed else "0.00000",
            "aq": qty(spec, a.executed),
            "act": a.actual_type or "0",
            "tp": f"{a.trigger}",
            "p": f"{a.price}" if a.price else "0",
            "V": "EXPIRE_MAKER",
            "wt": a.working_type,
            "pm": "NONE",
            "cp": a.close_position,
            "pP": a.price_protect,
            "R": a.reduce_only,
            "tt": a.trigger_time,
            "gtd": a.good_till,
            "rm": a.reject_reason,
        },
    }


def account_update(
    spec: InstrumentSpec,
    wallet: float,
    change: float,
    positions: list[tuple[Position, float, float]],
    *,
    now: int,
    reason: str,
) -> dict[str, Any]:
    """``ACCOUNT_UPDATE`` of ``spec``'s margin asset; positions carry (position, upnl, realized)."""
    head: dict[str, Any] = {"e": "ACCOUNT_UPDATE", "T": now, "E": now}
    if _coin(spec):
        head["i"] = ACCOUNT_ALIAS
    asset = spec.margin_asset
    return head | {
        "a": {
            "m": reason,
            "B": [{"a": asset, "wb": money(wallet), "cw": money(wallet), "bc": money(change)}],
            "P": [
                {
                    "s": p.symbol,
                    "pa": qty(spec, p.amount),
                    "ep": px(spec, p.entry) if p.amount else "0",
                    "bep": px(spec, p.entry) if p.amount else "0",
                    "cr": money(realized),
                    "up": money(upnl),
                    "mt": "isolated" if p.isolated else "cross",
                    "iw": money(p.margin if p.isolated else 0.0),
                    "ps": "BOTH",
                }
                for p, upnl, realized in positions
            ],
        },
    }
