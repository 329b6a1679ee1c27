"""The supervision protocol's messages: what supervisors, timers and the tree's root tell each other.

Every actor also accepts ``Barrier``; a supervisor receives ``ChildExited`` from its children's ``monitor``
callback (both in :mod:`.actor`). ``actors/messages.py`` lists these beside the domain's messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from .actor import ChildExited


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartChild:
    """Timer → supervisor: the backoff before restarting ``child_id`` after ``generation`` elapsed."""

    child_id: str
    generation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartGroup:
    """Command (operator → root → group supervisor): reset the budget and start every child fresh."""

    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ParkGroup:
    """Command (operator → root → group supervisor): stop the group's children and restart nothing."""

    name: str
    reason: str = "parked by operator"


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    """Liveness probe: a supervisor answers whether all its children are alive."""


SupervisorInbox = ChildExited | RestartChild | RestartGroup | ParkGroup | Ping
"""What every supervisor (shared, group) accepts."""
