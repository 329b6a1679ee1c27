"""What a reload may change in place, what it applies to the running process, and what it must refuse.

Pair settings are the tree's business (``SupervisionTree.reload`` restarts only the pairs whose effective
settings changed). This module covers the rest: the process-wide supervisor settings applied without
restarting anything, and the changes that need a new process (refused, with the running config kept).
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from loguru import logger

from ..messages import PairTimeframeInbox, SetCandleHandoff, Unsubscribe

if TYPE_CHECKING:
    from ..config import Config, PairSettings, SupervisorSettings
    from ..runtime.cpu_affinity import CpuPinning
    from ..runtime.routing import Router
    from ..runtime.scheduling import OrderPriority
    from ..tree.actor_refs import Refs
    from ..tree.pair_timeframe import PairBoard

IN_PLACE = ("gil_switch_interval_ms", "cpu_affinity", "entry_priority_hold_ms", "candle_handoff_ms")
"""``supervisor.*`` settings a reload applies to the running process, no pair restarted."""


class ProcessSettings:
    """Applies the process-wide ``supervisor`` settings of a reloaded config."""

    def __init__(self, *, cpu: CpuPinning, priority: OrderPriority, refs: Refs) -> None:
        self._cpu = cpu
        self._priority = priority
        self._refs = refs

    def apply(self, old: SupervisorSettings, new: SupervisorSettings) -> list[str]:
        """Apply what changed; returns the names of the settings applied."""
        changed = [name for name in IN_PLACE if getattr(new, name) != getattr(old, name)]
        if "gil_switch_interval_ms" in changed:
            sys.setswitchinterval(new.gil_switch_interval_ms / 1000)
        if "cpu_affinity" in changed:
            self._cpu.apply(new.cpu_affinity)
        if "entry_priority_hold_ms" in changed:
            self._priority.set_hold(new.entry_priority_hold_ms)
        if "candle_handoff_ms" in changed:
            # running market streams are told; a restarted one reads the new config
            self._refs.tell_streams(SetCandleHandoff(ms=new.candle_handoff_ms))
        if changed:
            logger.info(f"reload: applied {', '.join(f'supervisor.{n}' for n in changed)} in place")
        return changed


def refusals(
    old: Config,
    new: Config,
    *,
    pairs: tuple[Mapping[str, PairSettings], Mapping[str, PairSettings]],
    cpu: CpuPinning,
    listed: Collection[str],
) -> list[str]:
    """Why ``new`` cannot replace ``old`` in this process, one line each (empty: it can).

    ``pairs`` are the old and the new traded pairs; ``listed`` the symbols the exchange lists.
    """
    old_pairs, new_pairs = pairs
    problems = []
    if old.api.mode is not new.api.mode:
        problems.append(f"api.mode changed {old.api.mode} → {new.api.mode}: restart the service")
    if old.state_path() != new.state_path():
        problems.append("state_dir changed: restart the service")
    contracts_old = {s.contract_type for s in old_pairs.values()}
    contracts_new = {s.contract_type for s in new_pairs.values()}
    if not contracts_new <= contracts_old:
        problems.append("a new market type (USDT_M/COIN_M) needs its streams started: restart the service")
    problems += [f"pairs.{s.key}: {s.symbol} is not listed by the exchange" for s in new_pairs.values()
                 if s.symbol not in listed]  # fmt: skip
    cpus = cpu.check(new.supervisor.cpu_affinity)
    if cpus is not None:
        problems.append(cpus)
    return problems


def dropped_timeframes(
    old_pairs: Mapping[str, PairSettings], new_pairs: Mapping[str, PairSettings]
) -> list[tuple[PairSettings, tuple[str, ...]]]:
    """Per old pair, the timeframes the new config no longer streams (all of them for a removed pair)."""
    out = []
    for symbol, old in old_pairs.items():
        kept = new_pairs.get(symbol)
        gone = tuple(
            tf for tf in old.indicator_timeframes if kept is None or tf not in kept.indicator_timeframes
        )
        if gone:
            out.append((old, gone))
    return out


def forget_dropped(
    old_pairs: Mapping[str, PairSettings],
    new_pairs: Mapping[str, PairSettings],
    *,
    router: Router[PairTimeframeInbox],
    refs: Refs,
    board: PairBoard,
) -> None:
    """After a reload: the timeframes it dropped are no longer routed nor streamed; removed pairs go."""
    for old, gone in dropped_timeframes(old_pairs, new_pairs):
        for tf in gone:
            router.unregister(old.symbol, tf)
        stream = refs.streams.get(old.contract_type)
        if stream is not None:
            stream.tell(Unsubscribe.of(old.symbol, gone))
    for symbol in old_pairs.keys() - new_pairs.keys():
        board.drop(symbol)
        refs.executors.pop(symbol, None)
