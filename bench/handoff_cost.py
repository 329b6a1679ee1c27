"""What handing a candle to a pair actor's thread costs, against deciding it on the reader's own thread.

``python bench/handoff_cost.py [--actors 590] [--idle 3500] [--rounds 20]`` starts ``--actors`` actors of
this project's ``Actor`` base (plus ``--idle`` idle ones, as the bot's other threads), pins the process to
one CPU (as ``supervisor.cpu_affinity: auto`` does) and plays a close ``--rounds`` times: for each actor
the "reader" does a frame's worth of work (16 µs) and the actor a candle's (90 µs), delivered
four ways, each the way ``MarketStream`` could:

* ``same thread``: both pieces of work on the reader's thread (the floor: no delivery at all);
* ``run_here``: ``Router.run_here`` → ``Actor.run_here`` (the turnstile, the mailbox's count, the dispatch);
* ``tell + turn``: ``tell`` with a ``CandleTurn`` and wait for it, one candle at a time (the hand-off);
* ``tell 16, wait``: tell 16 actors, then wait for all 16 turns.

It prints the wall time per candle (median and range over the rounds) and each way's ratio to the first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import pykka

from nancemakina.actors.runtime.actor import Actor, Barrier
from nancemakina.actors.runtime.routing import Router
from nancemakina.actors.runtime.scheduling import CandleTurn

READER_S = 16e-6
PAIR_S = 90e-6


def spin_for(seconds: float) -> Callable[[], int]:
    """A loop of pure Python taking about ``seconds`` on this machine (calibrated once)."""
    n = 200_000
    started = time.perf_counter()
    _spin(n)
    per = (time.perf_counter() - started) / n
    count = max(1, int(seconds / per))
    return lambda: _spin(count)


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


@dataclass(frozen=True)
class Candle:
    turn: CandleTurn | None = None


class Pair(Actor[Candle]):
    work: Callable[[], int] = staticmethod(lambda: 0)

    def takes_here(self, message: object) -> bool:
        return isinstance(message, Candle)

    def on_candle(self, message: Candle) -> None:
        Pair.work()
        if message.turn is not None:
            message.turn.done()


def play(
    way: str, router: Router[Candle], refs: list[pykka.ActorRef[Pair]], read: Callable[[], int]
) -> float:
    """One close: wall seconds per candle."""
    started = time.perf_counter()
    if way == "same thread":
        for _ in refs:
            read()
            Pair.work()
    elif way == "run_here":
        for i in range(len(refs)):
            read()
            if not router.run_here(f"S{i}", "1m", Candle()):
                raise RuntimeError("an idle actor refused run_here")
    elif way == "tell + turn":
        for ref in refs:
            read()
            turn = CandleTurn()
            ref.tell(Candle(turn))
            turn.wait(0.25)
    else:
        for first in range(0, len(refs), 16):
            turns = []
            for ref in refs[first : first + 16]:
                read()
                turns.append(CandleTurn())
                ref.tell(Candle(turns[-1]))
            for turn in turns:
                turn.wait(0.25)
    return (time.perf_counter() - started) / len(refs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--actors", type=int, default=590, help="deciding pair actors (default 590)")
    p.add_argument("--idle", type=int, default=3500, help="idle actors beside them (default 3,500)")
    p.add_argument("--rounds", type=int, default=20, help="closes played per way (default 20)")
    args = p.parse_args(argv)
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    sys.setswitchinterval(0.0005)  # the bot's supervisor.gil_switch_interval_ms
    read = spin_for(READER_S)
    Pair.work = staticmethod(spin_for(PAIR_S))
    refs = [Pair.start(name=f"pair-{i}") for i in range(args.actors)]
    idle = [Pair.start(name=f"idle-{i}") for i in range(args.idle)]
    router: Router[Candle] = Router()
    for i, ref in enumerate(refs):
        router.register(f"S{i}", "1m", ref)
        ref.ask(Barrier(done=lambda: None))  # started: messages are handled only after on_start
    print(
        f"{args.actors} actors (+{args.idle:,} idle) on CPU {cpu}; per candle {READER_S * 1e6:.0f} µs of "
        f"reader work and {PAIR_S * 1e6:.0f} µs of pair work; {args.rounds} closes per way"
    )
    ways = ("same thread", "run_here", "tell + turn", "tell 16, wait")
    base = None
    try:
        for way in ways:
            per = []
            for _ in range(args.rounds):
                per.append(play(way, router, refs, read))
                time.sleep(0.05)
            median = statistics.median(per)
            base = base or median
            print(
                f"  {way:14} {median * 1e6:7.1f} µs per candle (min {min(per) * 1e6:6.1f}, max "
                f"{max(per) * 1e6:6.1f}); {median / base:4.2f}× same thread; a close of {args.actors} "
                f"candles {median * args.actors * 1e3:6.1f} ms"
            )
    finally:
        for ref in refs + idle:
            ref.stop(block=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
