"""``Router``: a key → the current incarnation of one actor, swapped atomically when it restarts.

Supervisors register each new incarnation before it warms up, so messages sent meanwhile queue in its
mailbox instead of being lost (nancemakina routes closed klines by (symbol, timeframe) to pair actors).
Readers never lock: they read an immutable mapping that writers replace. ``Router[M]`` only tells ``M``.
"""

from __future__ import annotations

import threading
from types import MappingProxyType
from typing import Any, Generic, TypeVar

import pykka

from .mailbox import Mailbox

Key = tuple[str, str]
M = TypeVar("M")


class Router(Generic[M]):
    """Thread-safe registry of actor refs by (symbol, timeframe), for messages of type ``M``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: MappingProxyType[Key, pykka.ActorRef[Any]] = MappingProxyType({})

    def register(self, symbol: str, timeframe: str, ref: pykka.ActorRef[Any]) -> None:
        """Point (symbol, timeframe) at ``ref``, replacing any previous incarnation."""
        with self._lock:
            routes = dict(self._routes)
            routes[(symbol, timeframe)] = ref
            self._routes = MappingProxyType(routes)

    def unregister(self, symbol: str, timeframe: str, ref: pykka.ActorRef[Any] | None = None) -> None:
        """Remove the route; with ``ref``, only if it still points at that incarnation."""
        with self._lock:
            current = self._routes.get((symbol, timeframe))
            if current is None or (ref is not None and current is not ref):
                return
            routes = dict(self._routes)
            del routes[(symbol, timeframe)]
            self._routes = MappingProxyType(routes)

    def get(self, symbol: str, timeframe: str) -> pykka.ActorRef[Any] | None:
        """Current actor for the key, if any (lock-free)."""
        return self._routes.get((symbol, timeframe))

    def keys(self) -> frozenset[Key]:
        """Every routed (symbol, timeframe)."""
        return frozenset(self._routes)

    def run_here(self, symbol: str, timeframe: str, message: M) -> bool:
        """Handle ``message`` on the calling thread if the current actor is idle and takes it there
        (``Actor.run_here``); False when nothing was done (then ``tell`` it)."""
        ref = self._routes.get((symbol, timeframe))
        if ref is None:
            return False
        inbox = ref.actor_inbox
        actor = inbox.owner() if isinstance(inbox, Mailbox) and inbox.owner is not None else None
        return actor is not None and bool(actor.run_here(message))

    def tell(self, symbol: str, timeframe: str, message: M) -> bool:
        """Deliver ``message`` to the current actor; False when nobody is registered or it is dead."""
        ref = self._routes.get((symbol, timeframe))
        if ref is None:
            return False
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            return False
        return True
