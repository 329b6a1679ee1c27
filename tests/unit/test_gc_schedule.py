"""``GcSchedule``: the warm heap frozen out of automatic collections, full ones at mid-minute only."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Iterator

import pytest

from nancemakina.actors.runtime.gc_schedule import GcSchedule


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_next_at_falls_on_the_second_asked_at_least_an_interval_later():
    schedule = GcSchedule(interval_s=3600.0, at_second=30.0)
    now = 1_700_000_010.0  # second 50 of its minute
    due = schedule.next_at(now)
    assert due % 60.0 == pytest.approx(30.0)
    assert now + 3600.0 <= due < now + 3660.0
    on_time = 1_700_000_010.0 + (30.0 - 1_700_000_010.0 % 60.0) % 60.0 - 3600.0  # lands exactly: kept
    assert schedule.next_at(on_time) == pytest.approx(on_time + 3600.0)
    assert GcSchedule(interval_s=5.0, at_second=None).next_at(100.0) == 105.0


def test_frozen_garbage_survives_automatic_collections_until_the_refreeze():
    schedule = GcSchedule(at_second=None)
    dead = cycle()  # garbage already: the refreeze at start collects it before freezing
    schedule.refreeze()
    assert dead() is None
    kept = Node()
    kept.other = Node()
    kept.other.other = kept
    probe = weakref.ref(kept)
    schedule.refreeze()  # alive at the freeze: frozen now
    assert gc.get_freeze_count() > 0
    del kept
    gc.collect()  # what an automatic full collection does: the permanent generation is not walked
    assert probe() is not None
    assert schedule.refreeze() >= 0.0
    assert probe() is None  # unfrozen, collected, the rest frozen again
    assert gc.get_freeze_count() > 0
    assert schedule.collections == 3


def test_the_thread_collects_when_due_and_stop_unfreezes():
    schedule = GcSchedule(interval_s=0.05, at_second=None)
    thread = schedule.start()
    assert thread.name == "gc-schedule"
    assert gc.get_freeze_count() > 0
    deadline = time.monotonic() + 5.0
    while schedule.collections < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert schedule.collections >= 3  # the one at start, then every interval
    assert schedule.last_pause_s is not None
    schedule.stop()
    assert not thread.is_alive()
    assert gc.get_freeze_count() == 0
    done = schedule.collections
    time.sleep(0.15)
    assert schedule.collections == done


def test_a_failing_collection_is_logged_and_the_schedule_goes_on(monkeypatch):
    schedule = GcSchedule(interval_s=0.02, at_second=None)
    calls = {"n": 0}
    real = gc.collect

    def flaky(*args: object) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("a finaliser raised")
        return real()

    monkeypatch.setattr(gc, "collect", flaky)
    schedule.start()
    deadline = time.monotonic() + 5.0
    while calls["n"] < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    schedule.stop()
    assert calls["n"] >= 4
