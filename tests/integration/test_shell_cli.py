"""``nancemakina shell`` against a real ControlServer with a fake target: one-shot commands and a pty session."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nancemakina.actors.cli.shell import run_shell_cli
from nancemakina.actors.cli.shell_render import render_actor_tree
from nancemakina.actors.cli.shell_top import top_rows
from tests.shell_support import FakeTarget, other_uid, serving, socket_dir

REPO = Path(__file__).resolve().parents[2]
SESSION_S = 15.0


@pytest.fixture
def target() -> FakeTarget:
    return FakeTarget()


@pytest.fixture
def path(tmp_path: Path):
    with socket_dir(tmp_path) as directory:
        yield directory / "control.sock"


@pytest.fixture
def server(path: Path, target: FakeTarget):
    with serving(path, target) as running:
        yield running


def shell(server, capsys, *argv: str) -> tuple[int, str, str]:
    code = run_shell_cli(["--socket", str(server.path), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ls_draws_the_actor_tree(server, capsys) -> None:
    code, out, err = shell(server, capsys, "-c", "ls")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ACTOR", "KIND", "STATE", "MAILBOX"]
    assert lines[1].startswith("Root ")
    assert any(line.startswith("├─ Supervisor[shared]") for line in lines)
    assert any(line.startswith("│  └─ OrderExecutor") for line in lines)
    assert any(line.startswith("   └─ PairTimeframe[ETHUSDT,5m]") for line in lines)
    assert "1h02m" in out  # uptime rendered as a duration


def test_inspect_accepts_the_config_key_form(server, target, capsys) -> None:
    code, out, _ = shell(server, capsys, "-c", "inspect BTC_USDT 1m")
    assert code == 0
    assert target.calls == [("inspect", "BTCUSDT", "1m")]
    assert out.startswith("BTCUSDT   paused: no   parked: no\n")
    assert "position: side=LONG  quantity=0.010  entry_price=65000.0" in out
    assert "1m  warm  no gap  side LONG  sma_short 65010.25  sma_long -" in out
    assert "last decision: action=ENTER_LONG" in out
    assert "OPEN_TIME" in out


def test_json_prints_the_raw_result(server, capsys) -> None:
    code, out, _ = shell(server, capsys, "--json", "-c", "positions")
    assert code == 0
    assert json.loads(out) == [
        {"symbol": "BTCUSDT", "side": "LONG", "quantity": "0.010", "entry_price": 65000.0}
    ]


def test_positions_orders_decisions_render_as_tables(server, capsys) -> None:
    for command, header in (("positions", "ENTRY_PRICE"), ("orders", "STOP_PRICE"), ("decisions", "ACTION")):
        code, out, _ = shell(server, capsys, "-c", command)
        assert code == 0
        assert header in out.splitlines()[0]


def test_threads_renders_the_affinity_and_a_table_of_kinds(server, capsys) -> None:
    code, out, _ = shell(server, capsys, "-c", "threads")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("cpu_affinity: 0")
    assert "0.5 ms" in lines[0]
    assert lines[2].split() == [
        "KIND",
        "THREADS",
        "CPU",
        "S",
        "WAIT",
        "S",
        "WAKEUPS",
        "µS",
        "WAIT/WAKE",
        "CPUS",
    ]
    assert lines[3].split() == ["PairTimeframe", "250", "12.500", "3.250", "90000", "36.1", "0"]


def test_top_once_sorts_by_mailbox_then_rate(server, capsys) -> None:
    code, out, _ = shell(server, capsys, "-c", "top --once")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("nancemakina top")
    assert "\x1b[" not in out
    assert lines[2].startswith("PairTimeframe[ETHUSDT,1m]")
    assert lines[3].startswith("PositionLedger")  # mailbox 1 at 3.0 msg/s
    assert lines[4].startswith("PairTimeframe[ETHUSDT,5m]")  # mailbox 1 at 1.5 msg/s


def test_top_repeats_n_times(server, target, capsys) -> None:
    code, out, _ = shell(server, capsys, "-c", "top -n 2 --interval 0")
    assert code == 0
    assert out.count("nancemakina top") == 2
    assert target.calls == [("actor_tree",), ("actor_tree",)]


def test_top_measures_rates_between_polls() -> None:
    rows = [{"name": "a", "messages": 110, "mailbox": 0}, {"name": "b", "messages": 5, "mailbox": 0}]
    ranked = top_rows(rows, {"a": (100, 10.0), "b": (5, 10.0)}, now=12.0)
    assert [(r["name"], r["msgs_per_s"]) for r in ranked] == [("a", 5.0), ("b", 0.0)]


def test_unknown_command_exits_1_with_a_suggestion(server, capsys) -> None:
    code, out, err = shell(server, capsys, "-c", "bogus")
    assert (code, out) == (1, "")
    assert err.startswith("error: unknown command 'bogus' (commands: decisions, health, help, inspect, ls,")
    code, _, err = shell(server, capsys, "-c", "inspct BTCUSDT")
    assert code == 1
    assert "did you mean 'inspect'?" in err


def test_daemon_refusal_of_a_command_exits_1(server, capsys) -> None:
    code, _, err = shell(server, capsys, "-c", "restart DOGE_USDT")
    assert code == 1
    assert err == "error: unknown pair DOGEUSDT (pairs: BTCUSDT, ETHUSDT)\n"


def test_missing_socket_exits_2_and_says_where_it_looked(path: Path, capsys) -> None:
    code = run_shell_cli(["--socket", str(path), "-c", "ls"])
    err = capsys.readouterr().err
    assert code == 2
    assert "is the daemon running?" in err
    assert f"looked at {path} (from --socket)" in err


def test_socket_path_comes_from_the_config(server, tmp_path: Path, capsys) -> None:
    config = tmp_path / "shell.yaml"
    config.write_text(f"control:\n  socket_path: {server.path}\n")
    assert run_shell_cli(["--config", str(config), "-c", "health"]) == 0
    assert capsys.readouterr().out.startswith("status: ok\n")


def test_refused_peer_exits_2(path: Path, target: FakeTarget, capsys) -> None:
    with serving(path, target, own_uid=other_uid(), allow_root=False):
        code = run_shell_cli(["--socket", str(path), "-c", "ls"])
    assert code == 2
    assert "the daemon refused the connection: permission denied: uid" in capsys.readouterr().err


def test_bad_shell_arguments_exit_2(capsys) -> None:
    assert run_shell_cli(["--socket", "a", "--config", "b"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_tree_survives_orphans_and_cycles() -> None:
    rows = [{"name": "a", "parent": "b"}, {"name": "b", "parent": "a"}, {"name": "c", "parent": "gone"}]
    assert "c" in render_actor_tree(rows)


class Pty:
    """Drives a child process through a pseudo-terminal; every wait is bounded."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=REPO, start_new_session=True
        )
        os.close(slave)
        self.seen = b""
        self.pos = 0

    def expect(self, marker: str, timeout_s: float = SESSION_S) -> str:
        """Output from the previous match up to and including ``marker``."""
        deadline = time.monotonic() + timeout_s
        wanted = marker.encode()
        while (found := self.seen.find(wanted, self.pos)) < 0:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.master], [], [], left)[0]:
                raise AssertionError(f"no {marker!r} within {timeout_s}s; got {self.seen[self.pos :]!r}")
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"session ended before {marker!r}; got {self.seen[self.pos :]!r}")
            self.seen += chunk
        start, self.pos = self.pos, found + len(wanted)
        return self.seen[start : self.pos].decode(errors="replace")

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(SESSION_S)
        os.close(self.master)


def test_interactive_session_through_a_pty(server, target, tmp_path: Path) -> None:
    code = "import sys; from nancemakina.actors.cli.shell import run_shell_cli; sys.exit(run_shell_cli(sys.argv[1:]))"
    env = {**os.environ, "HOME": str(tmp_path), "TERM": "xterm", "INPUTRC": "/dev/null"}
    session = Pty([sys.executable, "-c", code, "--socket", str(server.path)], env)
    try:
        banner = session.expect("nancemakina> ")
        assert f"connected to nancemakina pid {os.getpid()}" in banner
        session.send("help\n")
        assert "inspect PAIR [TF]" in session.expect("leave the shell")
        session.expect("nancemakina> ")
        session.send("ls\n")
        assert "PairTimeframe[ETHUSDT,5m]" in session.expect("nancemakina> ")
        session.send("inspe\tbtc\t1m\n")  # tab completes the command, then the symbol
        assert "BTCUSDT   paused: no" in session.expect("nancemakina> ")
        session.send("nonsense\n")
        assert "unknown command 'nonsense'" in session.expect("nancemakina> ")
        session.send("exit\n")
        assert session.proc.wait(SESSION_S) == 0
    finally:
        session.close()
    assert ("inspect", "BTCUSDT", "1m") in target.calls
    history = (tmp_path / ".nancemakina_history").read_text()
    assert "help" in history
