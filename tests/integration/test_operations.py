"""Operating a running daemon: every shell command over the real socket, metrics scraped over HTTP."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nancemakina.actors.cli.shell import run_shell_cli
from nancemakina.actors.config import parse_config
from nancemakina.supervisor import RootSupervisor
from tests.waiting import wait_until

pytestmark = pytest.mark.shared_actors  # one daemon for the module: its fixture stops it

ROOT = Path(__file__).resolve().parents[2]
BTC = ROOT / "data" / "BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv"
ETH = ROOT / "data" / "ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv"

FAMILIES = {
    "nancemakina_info",
    "nancemakina_uptime_seconds",
    "nancemakina_errors",
    "nancemakina_websocket_status",
    "nancemakina_websocket_messages_received",
    "nancemakina_klines_processed",
    "nancemakina_indicator_update_duration_seconds",
    "nancemakina_signals",
    "nancemakina_orders_placed",
    "nancemakina_orders_failed",
    "nancemakina_orders_filled",
    "nancemakina_active_positions",
    "nancemakina_unrealized_pnl",
    "nancemakina_actor_mailbox_depth",
    "nancemakina_actor_restarts",
    "nancemakina_actor_last_message_age_seconds",
    "nancemakina_pairs_parked",
    "nancemakina_candle_gaps_detected",
    "nancemakina_candles_backfilled",
    "nancemakina_naked_position_alerts",
    "nancemakina_request_weight_used",
    "nancemakina_rate_limit_responses",
    "nancemakina_reconciliation_discrepancies",
    "nancemakina_entry_priority_entries",
    "nancemakina_candle_handoffs",
    "nancemakina_decisions",
    "nancemakina_warmup_pairs",
    "nancemakina_startup_seconds",
}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RootSupervisor]:
    tmp = tmp_path_factory.mktemp("ops")
    files = []
    for src in (BTC, ETH):
        dst = tmp / src.name.replace("2025-05-25_2025-06-24", "slice")
        dst.write_text("\n".join(src.read_text().splitlines()[:3000]) + "\n")
        files.append(str(dst))
    config = parse_config(
        {
            "state_dir": str(tmp / "state"),
            "monitoring": {"enabled": True, "prometheus_port": 0},
            "replay": {"data": files, "speed": "max", "exit_at_end": False},
            "global_settings": {
                "v1_strategy": {
                    "sma_short_period": 5,
                    "sma_long_period": 20,
                    "min_signal_interval_minutes": 0,
                }
            },
            "pairs": {
                "BTC_USDT": {"indicator_timeframes": ["1m", "5m"]},
                "ETH_USDT": {"indicator_timeframes": ["1m"]},
            },
        },
        base_dir=tmp,
    )
    d = RootSupervisor(config)
    d.start()
    try:
        wait_until(
            lambda: d.replay.pacer is not None and d.replay.pacer.acked > 0, 30, "the first acked step"
        )
        yield d
    finally:
        d.shutdown()
        pykka.ActorRegistry.stop_all()


def shell(daemon: RootSupervisor, command: str, *, as_json: bool = True) -> tuple[int, object]:
    out = io.StringIO()
    argv = ["--socket", str(daemon.config.control_socket_path()), "-c", command]
    if as_json:
        argv.insert(0, "--json")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = run_shell_cli(argv)
    text = out.getvalue()
    return code, json.loads(text) if as_json and code == 0 else text


def test_the_configured_gil_switch_interval_is_applied(daemon: RootSupervisor) -> None:
    assert sys.getswitchinterval() == pytest.approx(daemon.config.supervisor.gil_switch_interval_ms / 1000)


def test_metrics_endpoint_parses_and_has_every_family(daemon: RootSupervisor) -> None:
    server = daemon.access.telemetry.server
    assert server is not None
    port = server.bound_port
    wait_until(lambda: "nancemakina_orders_placed_total" in _scrape(port), 60, "an order placed", poll_s=0.05)
    text = _scrape(port)
    names = {family.name for family in text_string_to_metric_families(text)}
    missing = FAMILIES - names
    assert not missing, f"missing families: {sorted(missing)}"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        assert response.status == 200


def test_candle_handoffs_are_counted_per_market(daemon: RootSupervisor) -> None:
    server = daemon.access.telemetry.server
    assert server is not None

    def counted() -> dict[str, float]:
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(_scrape(server.bound_port)):
            if family.name == "nancemakina_candle_handoffs":
                for s in family.samples:
                    if s.name.endswith("_total"):
                        out[s.labels["outcome"]] = out.get(s.labels["outcome"], 0.0) + s.value
        return out

    wait_until(
        lambda: counted().get("here", 0) > 0, 60, "a candle decided on the reader's thread", poll_s=0.05
    )
    seen = counted()
    snaps = [board.snapshot() for board in daemon.boards.values()]
    assert sum(s.handoffs for s in snaps) >= sum(seen.values()) > 0
    assert sum(s.handoffs_here for s in snaps) >= seen["here"] > 0


def _scrape(port: int | None) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def test_every_read_command(daemon: RootSupervisor) -> None:
    code, tree = shell(daemon, "ls")
    assert code == 0
    names = {row["name"] for row in tree}  # type: ignore[union-attr]
    assert {
        "root",
        "shared",
        "ledger",
        "pair:BTCUSDT:executor",
        "BTCUSDT",
        "pair:BTCUSDT:1m",
        "pair:ETHUSDT:1m",
    } <= names
    code, view = shell(daemon, "inspect BTC_USDT 1m")
    assert code == 0
    assert view["symbol"] == "BTCUSDT"  # type: ignore[index]
    assert view["timeframes"][0]["warm"] is True  # type: ignore[index]
    assert view["timeframes"][0]["last_klines"]  # type: ignore[index]
    for command in ("positions", "orders", "decisions BTCUSDT --limit 5", "health", "help"):
        code, _ = shell(daemon, command)
        assert code == 0, command
    code, health = shell(daemon, "health")
    assert health["status"] in {"ok", "degraded"}  # type: ignore[index]
    code, threads = shell(daemon, "threads")
    assert code == 0
    kinds = {row["kind"]: row for row in threads["kinds"]}  # type: ignore[index]
    assert {"PairTimeframe", "OrderExecutor", "PositionLedger", "MainThread"} <= set(kinds)
    assert kinds["PairTimeframe"]["threads"] == len(daemon.router.keys())
    assert kinds["PairTimeframe"]["cpu_s"] > 0
    if len(daemon.cpu.allowed) > 1:  # the default, auto: one CPU, the least busy at start
        assert threads["cpu_affinity_auto"] is True  # type: ignore[index]
        assert len(threads["cpu_affinity"]) == 1  # type: ignore[index]
        assert set(threads["cpu_affinity"]) <= daemon.cpu.allowed  # type: ignore[index]
    code, text = shell(daemon, "top --once", as_json=False)
    assert code == 0
    assert "pair:BTCUSDT:1m" in str(text)
    code, _ = shell(daemon, "inspect NOPE_USDT")
    assert code == 1


def test_pause_and_resume_take_effect(daemon: RootSupervisor) -> None:
    code, result = shell(daemon, "pause ETHUSDT")
    assert code == 0
    assert result == {"symbol": "ETHUSDT", "paused": True}
    metrics = daemon.access.telemetry.metrics
    wait_until(lambda: 'reason="paused"' in metrics.exposition().decode(), 60, "the paused metric")
    code, view = shell(daemon, "inspect ETHUSDT")
    assert view["paused"] is True  # type: ignore[index]
    code, result = shell(daemon, "resume ETHUSDT")
    assert result == {"symbol": "ETHUSDT", "paused": False}


def test_restart_takes_effect_and_other_pairs_keep_running(daemon: RootSupervisor) -> None:
    before = {g.name: g for g in daemon.status().groups}
    eth_child = before["ETHUSDT"].children[0]
    code, result = shell(daemon, "restart BTCUSDT")
    assert code == 0
    assert result == {"symbol": "BTCUSDT", "restarted": True}
    old = before["BTCUSDT"].children[0].generation

    def restarted() -> bool:
        group = {g.name: g for g in daemon.status().groups}["BTCUSDT"]
        return all(c.alive and c.generation > old for c in group.children)

    wait_until(restarted, 30, "BTCUSDT restarted")
    wait_until(
        lambda: all(st.warm for (s, _), st in daemon.pair_board.statuses.items() if s == "BTCUSDT"),
        30,
        "BTCUSDT warm again",
    )
    after = {g.name: g for g in daemon.status().groups}
    assert after["ETHUSDT"].children[0].generation == eth_child.generation  # the other pair is untouched
    assert after["ETHUSDT"].children[0].alive


def test_reload_command_reports_the_diff(daemon: RootSupervisor) -> None:
    code, result = shell(daemon, "reload")
    assert code == 0
    assert set(result) == {"added", "removed", "restarted", "unchanged"}  # type: ignore[arg-type]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another uid")
def test_connection_from_another_uid_is_refused(daemon: RootSupervisor) -> None:
    real = daemon.config.control_socket_path()
    # A second name for the socket where uid 65534 can reach it, and the inode opened up: the 0600 mode
    # is the first wall; this proves the second one (SO_PEERCRED) holds on its own.
    reachable = Path(f"/tmp/nancemakina-test-{os.getpid()}.sock")
    reachable.unlink(missing_ok=True)
    os.link(real, reachable)
    path = str(reachable)
    real.chmod(0o666)
    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: become nobody and try
            os.close(read)
            try:
                os.setgid(65534)
                os.setuid(65534)
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(5)
                    s.connect(path)
                    os.write(write, s.recv(4096))
            except Exception as exc:  # report anything to the parent
                os.write(write, f"EXC {exc!r}".encode())
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        answer = os.read(read, 4096).decode()
        os.close(read)
    finally:
        real.chmod(0o600)
        reachable.unlink(missing_ok=True)
    assert "permission denied" in answer
    assert "65534" in answer


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the death on purpose
def test_a_dead_essential_thread_turns_health_failing_and_stops_the_watchdog(daemon: RootSupervisor) -> None:
    """What the systemd watchdog and ``/healthz`` are fed: a wedged essential thread takes the process down."""
    release = threading.Event()

    def wedged() -> None:
        release.wait(5)
        raise RuntimeError("a bug in a thread outside the tree")

    port = daemon.access.telemetry.server.bound_port  # type: ignore[union-attr]
    thread = daemon.threads.spawn(wedged, name="test-essential", role="a test duty", essential=True)
    try:
        assert daemon.alive()
        release.set()
        thread.join(5)
        code, health = shell(daemon, "health")
        assert code == 0
        assert health["status"] == "failing"
        assert health["checks"]["dead_threads"] == ["test-essential (a test duty)"]
        assert not daemon.alive()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert refused.value.code == 503
    finally:
        daemon.threads.forget("test-essential")
    assert daemon.alive()
    assert shell(daemon, "health")[1]["status"] in {"ok", "degraded"}
