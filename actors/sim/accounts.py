"""Account, balance and positionRisk views of the ``Book`` in Binance's JSON shapes.

Maintenance margin is taken as a tenth of the initial margin (no liquidation is simulated: the liquidation
price is "0"); ``maxNotionalValue`` / ``maxQty`` come from the symbol's leverage brackets.
"""

from __future__ import annotations

from typing import Any

from ..domain.fills import notional_in_margin_asset
from ..domain.model import ContractType
from . import brackets
from .book import Book
from .wire import ACCOUNT_ALIAS, money, px, qty


def _assets(book: Book, contract_type: ContractType) -> list[str]:
    margin = {s.margin_asset for s in book.specs.values() if s.contract_type is contract_type}
    return sorted(a for a in book.wallet if a in margin)


def _symbols(book: Book, contract_type: ContractType, symbol: str | None) -> list[str]:
    if symbol is not None:
        book.spec(symbol)
        return [symbol]
    return sorted(s for s in book.marks if book.specs[s].contract_type is contract_type)


def _upnl(book: Book, asset: str) -> float:
    return sum(
        book.unrealized(s)
        for s, spec in book.specs.items()
        if spec.margin_asset == asset and s in book.positions
    )


def _margin(book: Book, asset: str) -> float:
    return sum(p.margin for s, p in book.positions.items() if book.specs[s].margin_asset == asset)


def _order_margin(book: Book, symbol: str) -> float:
    spec = book.specs[symbol]
    leverage = book.position(symbol).leverage
    resting = [o for o in book.open_orders(symbol) if not o.reduce_only]
    return sum(notional_in_margin_asset(spec, o.qty, o.limit) for o in resting) / leverage


def position_risk(book: Book, contract_type: ContractType, symbol: str | None) -> list[dict[str, Any]]:
    """``positionRisk`` rows (USDⓈ-M v2/v3 and COIN-M fields together)."""
    rows = []
    for sym in _symbols(book, contract_type, symbol):
        spec = book.specs[sym]
        pos = book.position(sym)
        mark = book.marks.get(sym, 0.0)
        upnl = book.unrealized(sym)
        notional = notional_in_margin_asset(spec, abs(pos.amount), mark) if mark else 0.0
        cap = brackets.cap_at(sym, contract_type, pos.leverage)
        row = {
            "symbol": sym,
            "positionAmt": qty(spec, pos.amount),
            "entryPrice": px(spec, pos.entry),
            "breakEvenPrice": px(spec, pos.entry),
            "markPrice": px(spec, mark),
            "unRealizedProfit": money(upnl),
            "liquidationPrice": "0",
            "leverage": str(pos.leverage),
            "marginType": "isolated" if pos.isolated else "cross",
            "isolatedMargin": money(pos.margin + upnl if pos.isolated else 0.0),
            "isAutoAddMargin": "false",
            "positionSide": "BOTH",
            "notional": money(notional if pos.amount >= 0 else -notional),
            "isolatedWallet": money(pos.margin if pos.isolated else 0.0),
            "marginAsset": spec.margin_asset,
            "initialMargin": money(pos.margin + _order_margin(book, sym)),
            "maintMargin": money(pos.margin * 0.1),
            "positionInitialMargin": money(pos.margin),
            "openOrderInitialMargin": money(_order_margin(book, sym)),
            "adl": 0,
            "bidNotional": "0",
            "askNotional": "0",
            "updateTime": pos.update_time,
        }
        if contract_type is ContractType.COIN_M:
            row |= {"notionalValue": row["notional"], "maxQty": cap}
        else:
            row["maxNotionalValue"] = cap
        rows.append(row)
    return rows


def balances(book: Book, contract_type: ContractType, now: int) -> list[dict[str, Any]]:
    """``balance`` rows (USDⓈ-M v2/v3 / COIN-M v1)."""
    rows = []
    for asset in _assets(book, contract_type):
        wallet = book.wallet[asset]
        avail = book.available(asset)
        rows.append(
            {
                "accountAlias": ACCOUNT_ALIAS,
                "asset": asset,
                "balance": money(wallet),
                "crossWalletBalance": money(wallet),
                "crossUnPnl": money(_upnl(book, asset)),
                "availableBalance": money(avail),
                "maxWithdrawAmount": money(max(0.0, avail)),
                "marginAvailable": True,
                "withdrawAvailable": money(max(0.0, avail)),
                "updateTime": now,
            }
        )
    return rows


def _asset_rows(book: Book, contract_type: ContractType, now: int) -> list[dict[str, Any]]:
    rows = []
    for asset in _assets(book, contract_type):
        wallet, upnl, im = book.wallet[asset], _upnl(book, asset), _margin(book, asset)
        orders = book.limits.margin(asset)
        avail = book.available(asset)
        rows.append(
            {
                "asset": asset,
                "walletBalance": money(wallet),
                "unrealizedProfit": money(upnl),
                "marginBalance": money(wallet + upnl),
                "maintMargin": money(im * 0.1),
                "initialMargin": money(im + orders),
                "positionInitialMargin": money(im),
                "openOrderInitialMargin": money(orders),
                "crossWalletBalance": money(wallet),
                "crossUnPnl": money(upnl),
                "availableBalance": money(avail),
                "maxWithdrawAmount": money(max(0.0, avail)),
                "marginAvailable": True,
                "updateTime": now,
            }
        )
    return rows


def _position_rows(book: Book, contract_type: ContractType, version: int) -> list[dict[str, Any]]:
    """``account`` positions: v2 (and COIN-M) every listed symbol; v3 those with a position or orders."""
    busy = {o.symbol for o in book.open_orders()} | {a.symbol for a in book.open_algos()}
    rows = []
    for risk in position_risk(book, contract_type, None):
        sym = risk["symbol"]
        common = {
            "symbol": sym,
            "positionSide": "BOTH",
            "positionAmt": risk["positionAmt"],
            "unrealizedProfit": risk["unRealizedProfit"],
            "initialMargin": risk["initialMargin"],
            "maintMargin": risk["maintMargin"],
            "updateTime": risk["updateTime"],
        }
        if version == 3:
            if book.position(sym).amount or sym in busy:
                extra = {k: risk[k] for k in ("isolatedMargin", "notional", "isolatedWallet")}
                rows.append(common | extra)
            continue
        common |= {
            "positionInitialMargin": risk["positionInitialMargin"],
            "openOrderInitialMargin": risk["openOrderInitialMargin"],
            "leverage": risk["leverage"],
            "isolated": risk["marginType"] == "isolated",
            "entryPrice": risk["entryPrice"],
            "bidNotional": "0",
            "askNotional": "0",
        }
        if contract_type is ContractType.COIN_M:
            rows.append(common | {k: risk[k] for k in ("breakEvenPrice", "maxQty", "notionalValue")})
        else:
            rows.append(common | {"maxNotional": risk["maxNotionalValue"]})
    return rows


def account(book: Book, contract_type: ContractType, now: int, *, version: int = 2) -> dict[str, Any]:
    """``account``: USDⓈ-M v2 / v3 (``version``), COIN-M v1 (the v2 field set of its own)."""
    body: dict[str, Any] = {}
    if version == 2:
        body = {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True, "updateTime": 0}
    if contract_type is ContractType.USDT_M:
        if version == 2:
            body |= {"feeBurn": False, "multiAssetsMargin": False, "tradeGroupId": -1}
        total_wallet = book.wallet.get("USDT", 0.0)
        total_upnl = _upnl(book, "USDT")
        total_im = _margin(book, "USDT")
        orders = book.limits.margin("USDT")
        avail = book.available("USDT")
        body |= {
            "totalInitialMargin": money(total_im + orders),
            "totalMaintMargin": money(total_im * 0.1),
            "totalWalletBalance": money(total_wallet),
            "totalUnrealizedProfit": money(total_upnl),
            "totalMarginBalance": money(total_wallet + total_upnl),
            "totalPositionInitialMargin": money(total_im),
            "totalOpenOrderInitialMargin": money(orders),
            "totalCrossWalletBalance": money(total_wallet),
            "totalCrossUnPnl": money(total_upnl),
            "availableBalance": money(avail),
            "maxWithdrawAmount": money(max(0.0, avail)),
        }
    body["assets"] = _asset_rows(book, contract_type, now)
    body["positions"] = _position_rows(book, contract_type, version)
    return body
