"""Threads outside the actor tree are watched: a death is logged once, reported, and counts as it should."""

from __future__ import annotations

import threading

import pytest
from loguru import logger

from nancemakina.actors.runtime.thread_watch import DeadThread, ThreadWatch

# the watched threads die of an uncaught exception on purpose: that is the case under test
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


def _dies(release: threading.Event) -> None:
    release.wait(5)
    raise RuntimeError("boom")  # an uncaught exception ends the thread, as a bug would


def test_an_essential_thread_that_dies_is_logged_once_reported_and_stops_liveness() -> None:
    deaths: list[DeadThread] = []
    logged: list[str] = []
    sink = logger.add(lambda m: logged.append(str(m)), level="ERROR")
    release = threading.Event()
    watch = ThreadWatch(on_death=deaths.append)
    thread = watch.spawn(
        lambda: _dies(release), name="reconcile", role="periodic reconciliation", essential=True
    )
    try:
        assert watch.essential_alive()
        assert watch.check() == []
        release.set()
        thread.join(5)
        dead = watch.check()
        assert [(d.name, d.essential) for d in dead] == [("reconcile", True)]
        assert not watch.essential_alive()
        watch.check()
        assert [d.name for d in deaths] == ["reconcile"], "reported once, however often it is checked"
        assert sum("thread reconcile died: periodic reconciliation stopped" in line for line in logged) == 1
    finally:
        logger.remove(sink)


def test_a_non_essential_death_degrades_but_keeps_the_process_alive() -> None:
    watch = ThreadWatch()
    release = threading.Event()
    thread = watch.spawn(lambda: _dies(release), name="config-watch", role="reloads", essential=False)
    release.set()
    thread.join(5)
    assert [d.name for d in watch.check()] == ["config-watch"]
    assert watch.essential_alive()


def test_forgotten_replaced_and_closing_threads_are_not_deaths() -> None:
    watch = ThreadWatch()
    done = threading.Event()
    first = watch.spawn(done.wait, name="timer", role="a timer", essential=True)
    done.set()
    first.join(5)
    watch.forget("timer")  # its owner ended it on purpose
    assert watch.check() == []
    keep = threading.Event()
    watch.spawn(keep.wait, name="timer", role="a timer", essential=True)  # a restarted actor's new timer
    assert watch.essential_alive()
    keep.set()
    watch.close()  # shutdown: threads end on purpose from now on
    assert watch.check() == []
    assert watch.essential_alive()


def test_a_thread_started_elsewhere_is_watched_by_name() -> None:
    watch = ThreadWatch()
    stop = threading.Event()
    started = threading.Thread(target=stop.wait, name="metrics-http-test", daemon=True)
    started.start()
    assert watch.watch_named("metrics-http-test", role="the metrics endpoint", essential=False)
    assert not watch.watch_named("no-such-thread", role="nothing", essential=False)
    stop.set()
    started.join(5)
    assert [d.name for d in watch.check()] == ["metrics-http-test"]
