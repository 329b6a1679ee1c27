"""Account, balance and positionRisk views of the ``Book`` in Binance's JSON shapes."""

from __future__ import annotations

from typing import Any

from ..domain.fills import notional_in_margin_asset
from ..domain.model import ContractType
from .book import Book
from .wire import money, px, qty


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


def position_risk(book: Book, contract_type: ContractType, symbol: str | None) -> list[dict[str, Any]]:
    """``positionRisk``: the fields of nautilus__position_risk.json plus v3's."""
    rows = []
    for sym in _symbols(book, contract_type, symbol):
        spec = book.specs[sym]
        pos = book.position(sym)
        mark = book.marks.get(sym, 0.0)
        upnl = book.unrealized(sym)
        notional = notional_in_margin_asset(spec, abs(pos.amount), mark) if mark else 0.0
        row = {
            "symbol": sym,
            "positionAmt": qty(spec, pos.amount),
            "entryPrice": px(spec, pos.entry),
            "breakEvenPrice": px(spec, pos.entry),
            "markPrice": px(spec, mark),
            "unRealizedProfit": money(upnl),
            "liquidationPrice": "0",
            "leverage": str(pos.leverage),
            "maxNotionalValue": "250000" if contract_type is ContractType.USDT_M else "0",
            "marginType": "isolated" if pos.isolated else "cross",
            "isolatedMargin": money(pos.margin + upnl if pos.isolated else 0.0),
            "isAutoAddMargin": "false",
            "positionSide": "BOTH",
            "notional": money(notional if pos.amount >= 0 else -notional),
            "isolatedWallet": money(pos.margin if pos.isolated else 0.0),
            "marginAsset": spec.margin_asset,
            "initialMargin": money(pos.margin),
            "maintMargin": money(pos.margin * 0.1),
            "positionInitialMargin": money(pos.margin),
            "openOrderInitialMargin": "0",
            "adl": 0,
            "bidNotional": "0",
            "askNotional": "0",
            "updateTime": pos.update_time,
        }
        if contract_type is ContractType.COIN_M:
            row["notionalValue"] = row["notional"]
            row["maxQty"] = "100000"
        rows.append(row)
    return rows


def balances(book: Book, contract_type: ContractType, now: int) -> list[dict[str, Any]]:
    """``balance`` rows (USDⓈ-M v3 / COIN-M v1)."""
    rows = []
    for asset in _assets(book, contract_type):
        wallet = book.wallet[asset]
        avail = book.available(asset)
        rows.append(
            {
                "accountAlias": "SgsR",
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


def account(book: Book, contract_type: ContractType, now: int) -> dict[str, Any]:
    """``account`` as in nautilus__account_info_v2.json (COIN-M: the same assets/positions lists)."""
    assets = []
    for asset in _assets(book, contract_type):
        wallet = book.wallet[asset]
        upnl = _upnl(book, asset)
        im = _margin(book, asset)
        avail = book.available(asset)
        assets.append(
            {
                "asset": asset,
                "walletBalance": money(wallet),
                "unrealizedProfit": money(upnl),
                "marginBalance": money(wallet + upnl),
                "maintMargin": money(im * 0.1),
                "initialMargin": money(im),
                "positionInitialMargin": money(im),
                "openOrderInitialMargin": "0.00000000",
                "crossWalletBalance": money(wallet),
                "crossUnPnl": money(upnl),
                "availableBalance": money(avail),
                "maxWithdrawAmount": money(max(0.0, avail)),
                "marginAvailable": True,
                "updateTime": now,
            }
        )
    positions = []
    for sym in _symbols(book, contract_type, None):
        spec = book.specs[sym]
        pos = book.position(sym)
        positions.append(
            {
                "symbol": sym,
                "initialMargin": money(pos.margin),
                "maintMargin": money(pos.margin * 0.1),
                "unrealizedProfit": money(book.unrealized(sym)),
                "positionInitialMargin": money(pos.margin),
                "openOrderInitialMargin": "0",
                "leverage": str(pos.leverage),
                "isolated": pos.isolated,
                "entryPrice": px(spec, pos.entry),
                "maxNotional": "250000",
                "bidNotional": "0",
                "askNotional": "0",
                "positionSide": "BOTH",
                "positionAmt": qty(spec, pos.amount),
                "updateTime": pos.update_time,
            }
        )
    body: dict[str, Any] = {
        "feeTier": 0,
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "updateTime": 0,
    }
    if contract_type is ContractType.USDT_M:
        total_wallet = book.wallet.get("USDT", 0.0)
        total_upnl = _upnl(book, "USDT")
        total_im = _margin(book, "USDT")
        avail = book.available("USDT")
        body |= {
            "multiAssetsMargin": False,
            "tradeGroupId": -1,
            "totalInitialMargin": money(total_im),
            "totalMaintMargin": money(total_im * 0.1),
            "totalWalletBalance": money(total_wallet),
            "totalUnrealizedProfit": money(total_upnl),
            "totalMarginBalance": money(total_wallet + total_upnl),
            "totalPositionInitialMargin": money(total_im),
            "totalOpenOrderInitialMargin": "0.00000000",
            "totalCrossWalletBalance": money(total_wallet),
            "totalCrossUnPnl": money(total_upnl),
            "availableBalance": money(avail),
            "maxWithdrawAmount": money(max(0.0, avail)),
        }
    body["assets"] = assets
    body["positions"] = positions
    return body
