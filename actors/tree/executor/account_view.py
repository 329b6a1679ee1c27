"""``AccountView``: what every executor needs to know of the account, read once per account and shared.

An executor needs, for its symbol, the margin type and leverage the account has (to change them only when
they differ from the pair's settings) and the wallet's available balance (to size entries). Read per
executor, that was four requests and 8 weight per symbol at every start; here it is two reads per account
(``symbolConfig`` or COIN-M ``positionRisk``, and ``balance``: 10 weight) however many symbols trade, and a
pair restart reads nothing. Executors write back what they change (a leverage they set, the balances they
refresh after an entry or a close), so the view stays the account's, not one executor's.

An account the bot traded on before already has every pair's settings: nothing to change. A fresh one needs
two changes per symbol (1,180 weight for 590 symbols, half a minute's budget); they are not needed before
the symbol's first entry, so a cold start makes them after every warm-up read (``set_up``, run late by the
``RestQueue``) and an entry that comes first makes its own symbol's.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Protocol

from loguru import logger

from ...domain.model import ContractType
from ...exchange.errors import ExchangeError
from ...exchange.parse import MalformedPayload
from ...exchange.types import Balance, SymbolSettings


class AccountGateway(Protocol):
    """The two account-wide reads (satisfied by ``BinanceGateway``)."""

    def symbol_settings(self, contract: ContractType) -> dict[str, SymbolSettings]: ...
    def balances(self, contract: ContractType) -> dict[str, Balance]: ...


class SettingsGateway(Protocol):
    """The two changes of a symbol's settings (satisfied by ``BinanceGateway``)."""

    def set_margin_type(self, symbol: str, contract: ContractType, margin_type: str) -> None: ...
    def set_leverage(self, symbol: str, contract: ContractType, leverage: int) -> object: ...


class AccountView:
    """Margin type, leverage and balances of one account; thread-safe (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settings: dict[str, SymbolSettings] = {}
        self._balances: dict[ContractType, dict[str, Balance]] = {}
        self.reads = 0
        """Account-wide reads made through :meth:`load` (two per market when both succeed)."""

    def load(self, gateway: AccountGateway, contract: ContractType) -> bool:
        """Read ``contract``'s settings of every symbol and its balances; False (logged) if a read failed.

        What could not be read is read by each executor when it needs it, as before the view existed.
        """
        ok = True
        try:
            settings = gateway.symbol_settings(contract)
            with self._lock:
                self._settings.update(settings)
                self.reads += 1
        except (ExchangeError, MalformedPayload) as exc:
            logger.warning(f"account: symbol settings of {contract} unread ({exc}); executors set theirs")
            ok = False
        try:
            self.set_balances(contract, gateway.balances(contract))
            with self._lock:
                self.reads += 1
        except (ExchangeError, MalformedPayload) as exc:
            logger.warning(f"account: balances of {contract} unread ({exc}); executors read their own")
            ok = False
        return ok

    def settings(self, symbol: str) -> SymbolSettings | None:
        with self._lock:
            return self._settings.get(symbol)

    def has(self, symbol: str, *, margin_type: str, leverage: int) -> bool:
        """The account is known to have these settings on ``symbol``."""
        known = self.settings(symbol)
        return known is not None and known.margin_type == margin_type and known.leverage == leverage

    def set_up(
        self, gateway: SettingsGateway, symbol: str, contract: ContractType, margin_type: str, leverage: int
    ) -> bool:
        """Change what differs of ``symbol``'s settings (nothing when the account has them); False, logged, if
        the exchange refused or could not be reached (the symbol's next entry tries again)."""
        known = self.settings(symbol)
        try:
            if known is None or known.margin_type != margin_type:
                gateway.set_margin_type(symbol, contract, margin_type)
            if known is None or known.leverage != leverage:
                gateway.set_leverage(symbol, contract, leverage)
        except (ExchangeError, MalformedPayload) as exc:
            logger.warning(f"{symbol}: margin/leverage setup failed ({exc}); retried before the next entry")
            return False
        with self._lock:
            self._settings[symbol] = SymbolSettings(symbol=symbol, margin_type=margin_type, leverage=leverage)
        return True

    def balances(self, contract: ContractType) -> Mapping[str, Balance] | None:
        """The latest balances of ``contract``'s wallets, or None when never read."""
        with self._lock:
            return self._balances.get(contract)

    def set_balances(self, contract: ContractType, balances: Mapping[str, Balance]) -> None:
        with self._lock:
            self._balances[contract] = dict(balances)
