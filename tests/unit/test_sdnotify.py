"""sd_notify over a real AF_UNIX datagram socket, the liveness-gated watchdog, and the signal relay."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from nancemakina.actors.ops.systemd import SdNotifier, SignalRelay, Watchdog, watchdog_interval_s

WAIT_S = 5.0


@pytest.fixture
def listener(tmp_path: Path):
    path = tmp_path / "notify.sock"
    if len(str(path)) > 100:  # sun_path is 108 bytes
        path = Path("/tmp") / f"nm-{uuid.uuid4().hex[:8]}.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(WAIT_S)
    yield sock, str(path)
    sock.close()
    path.unlink(missing_ok=True)


def drain(sock: socket.socket) -> list[bytes]:
    sock.setblocking(False)  # noqa: FBT003 - socket's own API
    received = []
    try:
        while True:
            received.append(sock.recv(256))
    except BlockingIOError:
        return received
    finally:
        sock.settimeout(WAIT_S)


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = SdNotifier.from_env({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.stopping()


def test_lifecycle_messages_arrive_on_the_socket(listener) -> None:
    sock, path = listener
    notifier = SdNotifier(
        SdNotifier.from_env({"NOTIFY_SOCKET": path}).address, monotonic_ns=lambda: 1_234_567_890
    )
    assert notifier.ready(status="2 pairs running")
    assert sock.recv(256) == b"READY=1\nSTATUS=2 pairs running"
    assert notifier.reloading()
    assert sock.recv(256) == b"RELOADING=1\nMONOTONIC_USEC=1234567"
    assert notifier.ready()
    assert sock.recv(256) == b"READY=1"
    assert notifier.status("reconciling")
    assert sock.recv(256) == b"STATUS=reconciling"
    assert notifier.stopping()
    assert sock.recv(256) == b"STOPPING=1"
    notifier.close()


def test_reloading_uses_the_real_monotonic_clock(listener) -> None:
    sock, path = listener
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    SdNotifier(path).reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert before <= int(sock.recv(256).split(b"MONOTONIC_USEC=")[1]) <= after


def test_abstract_namespace_address() -> None:
    name = f"nm-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(WAIT_S)
    try:
        assert SdNotifier("@" + name).watchdog()
        assert sock.recv(64) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_a_missing_socket_is_logged_not_raised(tmp_path: Path) -> None:
    assert not SdNotifier(str(tmp_path / "absent.sock")).ready()


def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None


def test_watchdog_pets_only_while_liveness_passes(listener) -> None:
    sock, path = listener
    script = iter([True, False, False, True, True, False])
    exhausted = threading.Event()

    def liveness() -> bool:
        verdict = next(script, None)
        if verdict is None:
            exhausted.set()
            return False
        return verdict

    watchdog = Watchdog(SdNotifier(path), liveness, interval_s=0.001)
    watchdog.start()
    assert exhausted.wait(WAIT_S)
    watchdog.stop()
    assert drain(sock) == [b"WATCHDOG=1"] * 3


def test_a_raising_liveness_check_counts_as_dead(listener) -> None:
    sock, path = listener
    called = threading.Event()

    def liveness() -> bool:
        called.set()
        raise RuntimeError("probe broke")

    watchdog = Watchdog(SdNotifier(path), liveness, interval_s=0.001)
    watchdog.start()
    assert called.wait(WAIT_S)
    watchdog.stop()
    assert drain(sock) == []


def test_signal_relay_runs_actions_off_the_handler_and_restores() -> None:
    previous = signal.getsignal(signal.SIGHUP)
    ran = threading.Event()
    ran_on: list[str] = []

    def action() -> None:
        ran_on.append(threading.current_thread().name)
        ran.set()

    relay = SignalRelay({signal.SIGHUP: action})
    relay.install()
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        assert ran.wait(WAIT_S)
    finally:
        relay.restore()
    assert ran_on == ["signal-relay"]
    assert signal.getsignal(signal.SIGHUP) is previous
