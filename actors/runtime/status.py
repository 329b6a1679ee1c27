"""What supervisors publish for the shell and metrics: immutable group snapshots on a lock-free board."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

SHARED = "shared"
"""Name of the supervisor of the shared children (started first, stopped last)."""


class GroupState(StrEnum):
    RUNNING = "running"
    RESTARTING = "restarting"
    """At least one child waits for its backoff timer."""
    PARKED = "parked"
    """Gave up (budget exhausted, crashed, parked by an operator): nothing restarts until ``RestartGroup``."""
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildStatus:
    child_id: str
    alive: bool
    generation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupStatus:
    """Immutable snapshot of one supervisor: a group (a trading pair in nancemakina) or ``"shared"``."""

    name: str
    state: GroupState
    restarts_in_window: int = 0
    total_restarts: int = 0
    """Restarts after a child failed (the budget's count)."""
    restarts_asked: int = 0
    """Restarts of the whole group an operator asked for (``RestartGroup``: fresh budget, every child)."""
    children: tuple[ChildStatus, ...] = ()
    last_error: str | None = None
    incarnation: int = 0
    """The supervisor's own generation: a replaced supervisor's late snapshot never overwrites the new one."""


class StatusBoard:
    """Latest snapshots for the shell and metrics. Writers swap immutable mappings; readers never lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: Mapping[str, GroupStatus] = MappingProxyType({})
        self._floor: dict[str, int] = {}
        self.shared: GroupStatus | None = None

    @property
    def groups(self) -> Mapping[str, GroupStatus]:
        return self._groups

    def publish(self, status: GroupStatus) -> None:
        if status.name == SHARED:
            self.shared = status
            return
        with self._lock:
            if status.incarnation < self._floor.get(status.name, 0):
                return
            self._floor[status.name] = status.incarnation
            self._groups = MappingProxyType({**self._groups, status.name: status})

    def remove_group(self, name: str) -> None:
        with self._lock:
            self._floor[name] = self._floor.get(name, 0) + 1
            self._groups = MappingProxyType({k: v for k, v in self._groups.items() if k != name})
