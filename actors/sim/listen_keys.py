"""listenKeys of the user-data streams, per market, on the wall clock (60 minutes unless kept alive).

As on Binance: ``POST listenKey`` returns the market's active key (extending it) or a new one; ``PUT``
extends it (-1125 when it is unknown or expired); ``DELETE`` forgets it. Expiry is the stream layer's to
announce (``listenKeyExpired``); this registry only keeps the keys.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ..domain.model import ContractType
from .errors import SimError


@dataclass(slots=True)
class ListenKey:
    key: str
    contract_type: ContractType
    expires: float
    """Wall-clock (``time.monotonic``) expiry."""


class ListenKeys:
    """The active listenKeys of both markets."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.keys: dict[str, ListenKey] = {}

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.keys))

    def active(self, key: str) -> ListenKey | None:
        """The key when it exists and has not expired."""
        lk = self.keys.get(key)
        return lk if lk is not None and lk.expires > time.monotonic() else None

    def create(self, contract_type: ContractType) -> str:
        now = time.monotonic()
        for lk in self.keys.values():
            if lk.contract_type is contract_type and lk.expires > now:
                lk.expires = now + self.ttl_s
                return lk.key
        key = secrets.token_hex(32)
        self.keys[key] = ListenKey(key, contract_type, now + self.ttl_s)
        return key

    def keepalive(self, key: str | None, contract_type: ContractType) -> str:
        now = time.monotonic()
        lk = (
            self.keys.get(key)
            if key
            else next((k for k in self.keys.values() if k.contract_type is contract_type), None)
        )
        if lk is None or lk.expires <= now:
            raise SimError(-1125, "This listenKey does not exist.")
        lk.expires = now + self.ttl_s
        return lk.key

    def delete(self, key: str | None, contract_type: ContractType) -> None:
        for k in [
            k
            for k, lk in self.keys.items()
            if k == key or (key is None and lk.contract_type is contract_type)
        ]:
            del self.keys[k]

    def expire(self, key: str | None = None) -> list[str]:
        """Forget ``key`` (None: every key past its TTL); returns the keys forgotten."""
        now = time.monotonic()
        expired = [k for k, lk in self.keys.items() if k == key or (key is None and lk.expires <= now)]
        for k in expired:
            del self.keys[k]
        return expired
