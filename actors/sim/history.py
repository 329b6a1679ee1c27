"""The account's history: every fill (``userTrades``) and every balance change (``income``).

Each fill is one user trade and, in the income history, a ``COMMISSION`` row (negative) and — when it
closed part of a position — a ``REALIZED_PNL`` row, both carrying the trade id. The starting wallets are
``TRANSFER`` rows at the replay's first moment. No funding is charged (see ``market_wire``), so there are
no ``FUNDING_FEE`` rows. Times are replay time, like every order and event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from ..domain.model import ContractType
from .orders import Side


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """One user trade."""

    trade_id: int
    order_id: int
    symbol: str
    contract_type: ContractType
    side: Side
    price: float
    qty: Decimal
    quote: float
    """Notional in the margin asset (USDT, or coins for COIN-M)."""
    commission: float
    asset: str
    realized: float
    maker: bool
    time: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Income:
    """One row of the income history."""

    tran_id: int
    symbol: str
    contract_type: ContractType | None
    """None: the account-wide starting transfer (shown on both markets that margin in its asset)."""
    kind: str
    amount: float
    asset: str
    info: str
    time: int
    trade_id: str = ""


@dataclass(slots=True)
class History:
    """Fills and income rows, oldest first."""

    fills: list[Fill] = field(default_factory=list)
    income: list[Income] = field(default_factory=list)
    _tran_id: int = 9_000_000

    def deposit(self, balances: Iterable[tuple[str, float]], time: int) -> None:
        """The starting wallets, as ``TRANSFER`` income."""
        for asset, amount in balances:
            self._add_income("", None, "TRANSFER", amount, asset, "TRANSFER", time)

    def record(self, fill: Fill) -> None:
        self.fills.append(fill)
        trade = str(fill.trade_id)
        if fill.realized:
            self._add_income(
                fill.symbol,
                fill.contract_type,
                "REALIZED_PNL",
                fill.realized,
                fill.asset,
                "",
                fill.time,
                trade,
            )
        self._add_income(
            fill.symbol, fill.contract_type, "COMMISSION", -fill.commission, fill.asset, "", fill.time, trade
        )

    def _add_income(  # noqa: PLR0917 - one argument per column
        self,
        symbol: str,
        contract_type: ContractType | None,
        kind: str,
        amount: float,
        asset: str,
        info: str,
        time: int,
        trade_id: str = "",
    ) -> None:
        self._tran_id += 1
        self.income.append(
            Income(
                tran_id=self._tran_id,
                symbol=symbol,
                contract_type=contract_type,
                kind=kind,
                amount=amount,
                asset=asset,
                info=info,
                time=time,
                trade_id=trade_id,
            )
        )
