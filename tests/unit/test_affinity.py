"""``CpuPinning`` and ``supervisor.cpu_affinity``: every thread on the configured CPUs, bad CPU sets refused."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from nancemakina.actors.config import ConfigError, parse_config
from nancemakina.actors.runtime.cpu_affinity import CpuPinning

ALLOWED = frozenset(os.sched_getaffinity(0))


def affinities() -> dict[int, frozenset[int]]:
    out = {}
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            out[int(task.name)] = frozenset(os.sched_getaffinity(int(task.name)))
    return out


@pytest.fixture
def unpinned() -> Iterator[None]:
    yield
    for tid in affinities():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(tid, ALLOWED)


@pytest.mark.skipif(len(ALLOWED) < 2, reason="needs 2 CPUs to tell pinned from unpinned")
def test_every_thread_is_pinned_those_started_later_inherit_and_none_gives_every_cpu_back(unpinned):
    one = min(ALLOWED)
    release = threading.Event()
    before = threading.Thread(target=release.wait, name="started-before")
    before.start()
    pinning = CpuPinning()
    try:
        assert pinning.apply([one]) >= 2
        assert set(affinities().values()) == {frozenset({one})}
        seen: list[frozenset[int]] = []
        after = threading.Thread(target=lambda: seen.append(frozenset(os.sched_getaffinity(0))))
        after.start()
        after.join()
        assert seen == [frozenset({one})]
        assert pinning.current == frozenset({one})
        pinning.apply(None)
        assert set(affinities().values()) == {ALLOWED}
        assert pinning.current is None
    finally:
        release.set()
        before.join()


def test_never_pinned_and_unset_leaves_the_process_alone(unpinned):
    narrowed = frozenset({min(ALLOWED)})
    os.sched_setaffinity(0, narrowed)  # as a shell's taskset or systemd's CPUAffinity= would
    assert CpuPinning(ALLOWED).apply(None) == 0
    assert os.sched_getaffinity(0) == narrowed


def test_a_cpu_the_process_may_not_use_is_refused_by_name():
    pinning = CpuPinning(frozenset({0, 1}))
    problem = pinning.check([1, 7])
    assert problem is not None
    assert "supervisor.cpu_affinity" in problem
    assert "CPU 7" in problem
    assert "CPUs 0, 1" in problem
    with pytest.raises(ValueError, match="CPU 7"):
        pinning.apply([7])
    assert pinning.check([0]) is None
    assert pinning.check(None) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [([], "at least one CPU"), ([0, 0], "listed twice"), ([-1], "between 0 and 4095, got -1"), ("x", "")],
)
def test_config_rejects_malformed_cpu_sets(value, message):
    with pytest.raises(ConfigError) as caught:
        parse_config({"supervisor": {"cpu_affinity": value}})
    text = "\n".join(caught.value.errors)
    assert "cpu_affinity" in text
    assert message in text


def test_config_sorts_the_cpus_and_the_machine_check_names_a_missing_one():
    config = parse_config({"supervisor": {"cpu_affinity": [1, 0]}})
    assert config.supervisor.cpu_affinity == (0, 1)
    assert parse_config({}).supervisor.cpu_affinity == "auto"
    assert parse_config({"supervisor": {"cpu_affinity": None}}).supervisor.cpu_affinity is None
    far = parse_config({"supervisor": {"cpu_affinity": [4095]}})
    errors = far.startup_errors()
    assert any("cpu_affinity" in e and "4095" in e for e in errors)


def test_auto_picks_the_least_busy_cpu_once_and_keeps_it(unpinned):
    samples = iter([{0: 100, 1: 100, 2: 100}, {0: 180, 1: 130, 2: 150}])  # CPU 1 the least busy since
    pinning = CpuPinning(frozenset({0, 1, 2}), busy=lambda: next(samples), sample_s=0.0)
    assert pinning.least_busy() == 1
    ties = iter([{0: 0, 1: 0}, {0: 5, 1: 5}])
    assert CpuPinning(frozenset({0, 1}), busy=lambda: next(ties), sample_s=0.0).least_busy() == 1
    assert pinning.check("auto") is None


@pytest.mark.skipif(len(ALLOWED) < 2, reason="needs 2 CPUs to choose from")
def test_auto_pins_every_thread_to_one_cpu_and_a_reload_keeps_it(unpinned):
    pinning = CpuPinning()
    assert pinning.apply("auto") >= 1
    chosen = pinning.current
    assert chosen is not None
    assert len(chosen) == 1
    assert pinning.auto
    assert set(affinities().values()) == {chosen}
    assert pinning.apply("auto") == 0  # a reload: the same CPU, nothing moved
    assert pinning.current == chosen
    pinning.apply(None)
    assert set(affinities().values()) == {ALLOWED}


def test_auto_on_one_cpu_or_without_permission_leaves_the_process_alone(unpinned, monkeypatch):
    assert CpuPinning(frozenset({0})).apply("auto") == 0
    busy = iter([{0: 0, 1: 0}, {0: 1, 1: 0}])
    pinning = CpuPinning(frozenset({0, 1}), busy=lambda: next(busy), sample_s=0.0)

    def refused(_tid: int, _cpus: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setaffinity", refused)  # as under a seccomp filter without it
    assert pinning.apply("auto") == 0
    assert pinning.current is None
    with pytest.raises(PermissionError):
        pinning.apply([0])  # an explicit list is the operator's demand: an error, not a warning
