"""The control server over a real Unix socket, in front of a hand-written fake target."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from nancemakina.actors.ops.control_commands import ControlError, normalize_pair
from nancemakina.actors.ops.control_server import ControlServer, ControlSocketInUseError
from tests.shell_support import (
    SECRET,
    WAIT_S,
    FakeTarget,
    RawClient,
    other_uid,
    serving,
    socket_dir,
)


@pytest.fixture
def target() -> FakeTarget:
    return FakeTarget()


@pytest.fixture
def path(tmp_path: Path):
    with socket_dir(tmp_path) as directory:
        yield directory / "run" / "control.sock"


@pytest.fixture
def server(path: Path, target: FakeTarget):
    with serving(path, target) as running:
        yield running


@pytest.fixture
def client(server: ControlServer):
    raw = RawClient(server.path)
    yield raw
    raw.close()


def test_socket_is_0600_in_a_0700_directory_and_greets(server: ControlServer, client: RawClient) -> None:
    assert stat.S_ISSOCK(server.path.stat().st_mode)
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(server.path.parent.stat().st_mode) == 0o700
    assert client.hello == {
        "id": None,
        "ok": True,
        "result": {"server": "nancemakina", "protocol": 1, "pid": os.getpid()},
    }


@pytest.mark.parametrize(
    ("cmd", "args", "call"),
    [
        ("ls", [], ("actor_tree",)),
        ("inspect", ["btcusdt"], ("inspect", "BTCUSDT", None)),
        ("inspect", ["BTC_USDT", "5m"], ("inspect", "BTCUSDT", "5m")),
        ("positions", [], ("positions",)),
        ("orders", [], ("orders",)),
        ("decisions", [], ("decisions", None, 20)),
        ("decisions", ["eth_usdt", "--limit", "5"], ("decisions", "ETHUSDT", 5)),
        ("decisions", ["--limit=3"], ("decisions", None, 3)),
        ("restart", ["ETHUSDT"], ("restart_pair", "ETHUSDT")),
        ("pause", ["BTC_USDT"], ("pause_pair", "BTCUSDT")),
        ("resume", ["btcusdt"], ("resume_pair", "BTCUSDT")),
        ("reload", [], ("reload",)),
        ("health", [], ("health",)),
        ("threads", [], ("threads",)),
    ],
)
def test_each_command_round_trips(client: RawClient, target: FakeTarget, cmd, args, call) -> None:
    rid = client.send(cmd, *args)
    response = client.read()
    assert response is not None
    assert response["id"] == rid
    assert response["ok"] is True, response
    assert target.calls == [call]
    json.dumps(response["result"], allow_nan=False)


def test_help_lists_every_command(client: RawClient) -> None:
    response = client.ask("help")
    assert response is not None
    names = {row["command"] for row in response["result"]}
    assert names >= {"ls", "top", "inspect", "decisions", "restart", "pause", "resume", "reload", "health"}


def test_nan_becomes_null(client: RawClient) -> None:
    response = client.ask("inspect", "BTCUSDT", "1m")
    assert response is not None
    frame = response["result"]["timeframes"][0]
    assert frame["sma_long"] is None
    assert frame["sma_short"] == 65010.25


def test_pair_spellings_normalise() -> None:
    assert normalize_pair("btcusdt") == "BTCUSDT"
    assert normalize_pair("BTC_USDT") == "BTCUSDT"
    assert normalize_pair("btcusd_perp") == "BTCUSD_PERP"
    with pytest.raises(ControlError, match="invalid pair"):
        normalize_pair("BTC-USDT")


@pytest.mark.parametrize(
    ("cmd", "args", "message"),
    [
        ("lss", [], "unknown command 'lss'; did you mean 'ls'?"),
        ("inspct", ["BTCUSDT"], "did you mean 'inspect'?"),
        ("bogus", [], "commands: decisions, health, help, inspect, ls, orders, pause, positions"),
        ("inspect", [], "usage: inspect PAIR [TF]"),
        ("inspect", ["BTCUSDT", "2m"], "unknown timeframe '2m'"),
        ("inspect", ["DOGEUSDT"], "unknown pair DOGEUSDT (pairs: BTCUSDT, ETHUSDT)"),
        ("restart", ["BTC/USDT"], "invalid pair 'BTC/USDT'"),
        ("decisions", ["--limit", "0"], "--limit must be a whole number from 1 to 1000"),
        ("decisions", ["BTCUSDT", "ETHUSDT"], "usage: decisions [PAIR] [--limit N]"),
        ("top", [], "runs in `nancemakina shell`"),
        ("ls", ["extra"], "usage: ls"),
    ],
)
def test_errors_are_responses(client: RawClient, cmd, args, message) -> None:
    response = client.ask(cmd, *args)
    assert response is not None
    assert response["ok"] is False
    assert message in response["error"]
    assert client.ask("health") is not None  # the connection is still usable


def test_target_exception_is_an_error_response_and_the_server_survives(
    client: RawClient, target: FakeTarget
) -> None:
    target.explode = True
    response = client.ask("orders")
    assert response == {
        "id": 1,
        "ok": False,
        "error": "internal error in orders: RuntimeError: ledger snapshot missing",
    }
    target.explode = False
    again = client.ask("orders")
    assert again is not None
    assert again["ok"] is True


def test_malformed_requests_are_answered(client: RawClient) -> None:
    client.sock.sendall(b"this is not json\n")
    assert client.read() == {"id": None, "ok": False, "error": "bad request: not a JSON object line"}
    client.sock.sendall(b'{"id": 7, "cmd": "ls", "args": "BTCUSDT"}\n')
    response = client.read()
    assert response is not None
    assert response["id"] == 7
    assert "bad request" in response["error"]


def test_secrets_never_leave_the_server(client: RawClient, target: FakeTarget) -> None:
    target.leak = True
    client.send("positions")
    raw = client.lines.readline().decode()
    assert SECRET not in raw
    assert "whatever-it-is" not in raw
    row = json.loads(raw)["result"][0]
    assert row["note"] == "signed with ***"
    assert row["api_secret"] == "***"


def test_slow_target_call_does_not_block_other_connections(server: ControlServer, target: FakeTarget) -> None:
    target.slow = True
    first, second = RawClient(server.path), RawClient(server.path)
    try:
        first.send("health")
        assert target.entered.wait(WAIT_S)
        response = second.ask("ls")  # answered while health is still stuck in the target
        assert response is not None
        assert response["ok"] is True
        target.release.set()
        late = first.read()
        assert late is not None
        assert late["result"]["status"] == "ok"
    finally:
        target.release.set()
        first.close()
        second.close()


def test_a_call_past_its_deadline_is_an_error_and_closes_the_connection(
    path: Path, target: FakeTarget
) -> None:
    target.slow = True
    with serving(path, target, request_timeout_s=0.2) as server:
        client = RawClient(server.path)
        try:
            response = client.ask("health")
            assert response is not None
            assert response["ok"] is False
            assert "no answer within 0.2s" in response["error"]
            assert client.read() is None
        finally:
            target.release.set()
            client.close()


def test_connections_beyond_the_limit_are_told_busy(path: Path, target: FakeTarget) -> None:
    with serving(path, target, max_clients=1) as server:
        first = RawClient(server.path)
        try:
            second = RawClient(server.path)
            assert second.hello == {
                "id": None,
                "ok": False,
                "error": "busy: too many shell connections, try again",
            }
            assert second.read() is None
            second.close()
        finally:
            first.close()


def test_peer_with_a_foreign_uid_is_refused(path: Path, target: FakeTarget) -> None:
    with serving(path, target, own_uid=other_uid(), allow_root=False, allowed_uids=frozenset()) as server:
        client = RawClient(server.path)
        try:
            assert client.hello is not None
            assert client.hello["ok"] is False
            assert (
                f"permission denied: uid {os.geteuid()} may not use this control socket"
                in (client.hello["error"])
            )
            assert client.read() is None  # closed
        finally:
            client.close()
    assert target.calls == []


def test_allowed_uids_admit_another_user(path: Path, target: FakeTarget) -> None:
    allowed = frozenset({os.geteuid()})
    with serving(path, target, own_uid=other_uid(), allow_root=False, allowed_uids=allowed) as server:
        client = RawClient(server.path)
        try:
            assert client.hello is not None
            assert client.hello["ok"] is True
        finally:
            client.close()


def test_stale_socket_file_is_replaced(path: Path, target: FakeTarget) -> None:
    path.parent.mkdir(mode=0o700)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays behind, as after kill -9
    with serving(path, target) as server:
        client = RawClient(server.path)
        try:
            assert client.ask("health") is not None
        finally:
            client.close()


def test_second_server_on_a_live_socket_is_refused(server: ControlServer, target: FakeTarget) -> None:
    second = ControlServer(server.path, FakeTarget())
    with pytest.raises(ControlSocketInUseError, match="another live process serves"):
        second.start()
    client = RawClient(server.path)  # the first one is untouched
    try:
        assert client.ask("ls") is not None
    finally:
        client.close()


def test_a_regular_file_at_the_path_is_not_replaced(path: Path, target: FakeTarget) -> None:
    path.parent.mkdir(mode=0o700)
    path.write_text("precious")
    with pytest.raises(ControlSocketInUseError, match="is not a socket"):
        ControlServer(path, target).start()
    assert path.read_text() == "precious"


def test_stop_removes_the_file_and_closes_connections(path: Path, target: FakeTarget) -> None:
    server = ControlServer(path, target)
    server.start()
    client = RawClient(path)
    closed = threading.Event()

    def wait_for_close() -> None:
        if client.read() is None:
            closed.set()

    reader = threading.Thread(target=wait_for_close)
    reader.start()
    server.stop()
    server.stop()  # idempotent
    reader.join(WAIT_S)
    assert closed.is_set()
    assert not path.exists()
    with pytest.raises(FileNotFoundError):
        RawClient(path)
    client.close()
