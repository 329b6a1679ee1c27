"""Metrics: every family exposed, providers read at scrape time, the HTTP endpoint and /healthz."""

from __future__ import annotations

import http.client
import socket
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from nancemakina.actors.domain.model import Decision, Direction, Leg, Outcome, SkipReason
from nancemakina.actors.messages import EntryRejected, OrderFilled, OrderStateChanged
from nancemakina.actors.ops.metric_families import COUNTERS, OVERFLOW, SNAPSHOTS, clean_label
from nancemakina.actors.ops.metrics import Metrics
from nancemakina.actors.ops.metrics_server import MetricsServer

EXPECTED_FAMILIES = {
    "nancemakina_info",
    "nancemakina_uptime_seconds",
    "nancemakina_threads",
    "nancemakina_errors",
    "nancemakina_websocket_status",
    "nancemakina_websocket_messages_received",
    "nancemakina_websocket_reconnects",
    "nancemakina_klines_processed",
    "nancemakina_indicator_update_duration_seconds",
    "nancemakina_signals",
    "nancemakina_decisions",
    "nancemakina_orders_placed",
    "nancemakina_orders_failed",
    "nancemakina_orders_filled",
    "nancemakina_active_positions",
    "nancemakina_unrealized_pnl",
    "nancemakina_actor_mailbox_depth",
    "nancemakina_actor_restarts",
    "nancemakina_actor_last_message_age_seconds",
    "nancemakina_pairs_parked",
    "nancemakina_pair_parked",
    "nancemakina_candle_gaps_detected",
    "nancemakina_candles_backfilled",
    "nancemakina_candle_gaps_unrepaired",
    "nancemakina_naked_position_alerts",
    "nancemakina_alerts",
    "nancemakina_request_weight_used",
    "nancemakina_rate_limit_responses",
    "nancemakina_reconciliation_discrepancies",
    "nancemakina_entry_priority_entries",
    "nancemakina_candle_handoffs",
    "nancemakina_replay_progress_ratio",
    "nancemakina_trades_closed",
    "nancemakina_realized_pnl",
    "nancemakina_fees_paid",
    "nancemakina_wallet_balance",
    "nancemakina_equity",
    "nancemakina_position_size",
    "nancemakina_position_entry_price",
    "nancemakina_position_stop_price",
    "nancemakina_position_take_profit_price",
}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name, frozenset(s.labels.items())] = s.value
    return out


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return samples(m.exposition().decode()).get((name, frozenset(labels.items())))


def decision(outcome: Outcome, reason: SkipReason | None = None) -> Decision:
    return Decision(
        symbol="BTCUSDT",
        timeframe="1m",
        signal_open_time_ms=0,
        decided_open_time_ms=60_000,
        direction=Direction.LONG,
        outcome=outcome,
        reason=reason,
    )


def exercise(m: Metrics) -> None:
    m.error("executor", "TimeoutError")
    m.websocket_state("USDT_M", "connected")
    m.websocket_message("USDT_M", "kline_closed", 3)
    m.websocket_reconnect("USDT_M")
    m.kline_processed("BTCUSDT", "1m", 0.00004)
    m.decision(decision(Outcome.TAKEN))
    m.decision(decision(Outcome.SKIPPED, SkipReason.VOLUME_FILTER))
    m.order_placed("BTCUSDT", "MARKET", "BUY")
    m.order_failed("BTCUSDT", "below_min_notional")
    m.order_filled("BTCUSDT", "MARKET", "BUY")
    m.actor_restarted("PairTimeframe[BTCUSDT,1m]")
    m.gap_detected("BTCUSDT", "1m")
    m.candles_backfilled("BTCUSDT", "1m", 4)
    m.alert("naked_position", "BTCUSDT")
    m.rate_limit_response(429)
    m.reconciliation_discrepancy("unknown_position")
    m.entry_priority("sent", 3)
    m.candle_handoff("USDT_M", "finished", 250)
    m.provide("active_positions", lambda: {"USDT_M": 1, "COIN_M": 0})
    m.provide("unrealized_pnl", lambda: {"BTCUSDT": -1.5})
    m.provide("actor_mailbox_depth", lambda: {"OrderExecutor": 2})
    m.provide("actor_last_message_age_seconds", lambda: {"OrderExecutor": 0.5})
    m.provide("request_weight_used", lambda: {"USDT_M": 37})
    m.provide("pair_parked", lambda: {"BTCUSDT": 0, "ETHUSDT": 1})
    m.provide("candle_gaps_unrepaired", lambda: {("BTCUSDT", "1m"): 2})
    m.provide("replay_progress_ratio", lambda: 0.25)
    m.provide("trades_closed", lambda: {("BTCUSDT", "stop_loss"): 2, ("BTCUSDT", "take_profit"): 1})
    m.provide("realized_pnl", lambda: {("BTCUSDT", "USDT"): -2.0288})
    m.provide("fees_paid", lambda: {("BTCUSDT", "USDT"): 0.34351968})
    m.provide("wallet_balance", lambda: {"USDT": 9_994.40435553})
    m.provide("equity", lambda: {"USDT": 9_993.1})
    m.provide("position_size", lambda: {"BTCUSDT": -0.004, "ETHUSDT": 0.0})
    m.provide("position_entry_price", lambda: {"BTCUSDT": 107_096.3})
    m.provide("position_stop_price", lambda: {"BTCUSDT": 107_592.7})
    m.provide("position_take_profit_price", lambda: {"BTCUSDT": 105_650.3})


def test_every_family_is_exposed_with_samples_after_the_helpers_ran():
    m = Metrics(mode="replay", version="9.9")
    exercise(m)
    families = {f.name: f for f in text_string_to_metric_families(m.exposition().decode())}
    assert set(families) >= EXPECTED_FAMILIES
    empty = {name for name in EXPECTED_FAMILIES if not families[name].samples}
    assert empty == set()
    assert {f.name for f in families.values() if f.type == "counter"} >= {
        f"nancemakina_{name}" for name in COUNTERS
    }
    assert families["nancemakina_indicator_update_duration_seconds"].type == "histogram"


def test_a_fresh_registry_exposes_every_family_even_without_samples():
    names = {f.name for f in text_string_to_metric_families(Metrics().exposition().decode())}
    assert names >= EXPECTED_FAMILIES


def test_helper_values_land_under_prometheus_names():
    m = Metrics(mode="replay", version="9.9")
    exercise(m)
    assert value(m, "nancemakina_info", version="9.9", mode="replay") == 1
    assert value(m, "nancemakina_errors_total", module="executor", type="TimeoutError") == 1
    assert (
        value(m, "nancemakina_websocket_messages_received_total", market="USDT_M", type="kline_closed") == 3
    )
    assert value(m, "nancemakina_decisions_total", symbol="BTCUSDT", reason="taken") == 1
    assert value(m, "nancemakina_candle_handoffs_total", market="USDT_M", outcome="finished") == 250
    assert value(m, "nancemakina_decisions_total", symbol="BTCUSDT", reason="volume_filter") == 1
    assert value(m, "nancemakina_signals_total", symbol="BTCUSDT", strategy="v1", direction="LONG") == 2
    assert value(m, "nancemakina_candles_backfilled_total", symbol="BTCUSDT", interval="1m") == 4
    assert value(m, "nancemakina_naked_position_alerts_total", symbol="BTCUSDT") == 1
    assert value(m, "nancemakina_alerts_total", kind="naked_position") == 1
    assert value(m, "nancemakina_rate_limit_responses_total", code="429") == 1
    assert value(m, "nancemakina_candle_gaps_unrepaired", symbol="BTCUSDT", interval="1m") == 2
    assert value(m, "nancemakina_pairs_parked") == 1  # derived from pair_parked
    assert value(m, "nancemakina_replay_progress_ratio") == 0.25
    bucket = value(
        m, "nancemakina_indicator_update_duration_seconds_bucket", symbol="BTCUSDT", interval="1m", le="5e-05"
    )
    assert bucket == 1


def test_websocket_status_is_one_hot_and_unknown_states_count_as_error():
    m = Metrics()
    m.websocket_state("COIN_M", "connecting")
    m.websocket_state("COIN_M", "connected")
    states = {
        s: value(m, "nancemakina_websocket_status", market="COIN_M", state=s)
        for s in ("connected", "connecting", "disconnected", "error")
    }
    assert states == {"connected": 1, "connecting": 0, "disconnected": 0, "error": 0}
    m.websocket_state("COIN_M", "confused")
    assert value(m, "nancemakina_websocket_status", market="COIN_M", state="error") == 1
    assert value(m, "nancemakina_websocket_status", market="COIN_M", state="connected") == 0


def test_a_configured_pair_has_its_series_at_zero_from_the_start():
    m = Metrics()
    m.configured("ETHUSDT", ("1m", "5m"))
    m.process_started(("USDT_M",))
    zero = {
        ("nancemakina_klines_processed_total", ("symbol", "ETHUSDT"), ("interval", "5m")),
        ("nancemakina_candle_gaps_detected_total", ("symbol", "ETHUSDT"), ("interval", "1m")),
        ("nancemakina_candles_backfilled_total", ("symbol", "ETHUSDT"), ("interval", "5m")),
        ("nancemakina_decisions_total", ("symbol", "ETHUSDT"), ("reason", "taken")),
        ("nancemakina_decisions_total", ("symbol", "ETHUSDT"), ("reason", "paused")),
        ("nancemakina_naked_position_alerts_total", ("symbol", "ETHUSDT")),
        ("nancemakina_alerts_total", ("kind", "stop_failed")),
        ("nancemakina_rate_limit_responses_total", ("code", "418")),
        ("nancemakina_websocket_reconnects_total", ("market", "USDT_M")),
    }
    for name, *labels in zero:
        assert value(m, name, **dict(labels)) == 0, name
    for order_type in ("MARKET", "STOP_MARKET", "TAKE_PROFIT_MARKET"):
        for side in ("BUY", "SELL"):
            labels = {"symbol": "ETHUSDT", "type": order_type, "side": side}
            assert value(m, "nancemakina_orders_filled_total", **labels) == 0
            assert value(m, "nancemakina_orders_placed_total", **labels) == 0


def test_order_events_map_to_placed_filled_failed():
    m = Metrics()

    def changed(leg: Leg, status: str) -> OrderStateChanged:
        return OrderStateChanged(symbol="BTCUSDT", client_id="nm-x", leg=leg, status=status, side="SELL")

    m.order_event(changed(Leg.STOP, "submitted"))
    m.order_event(changed(Leg.ENTRY, "filled"))  # counted from the ledger's OrderFilled, once per order
    m.order_event(changed(Leg.TAKE_PROFIT, "rejected"))
    m.order_event(changed(Leg.ENTRY, "new"))  # acknowledged: neither placed again nor failed
    m.order_event(EntryRejected(symbol="BTCUSDT", signal_open_time_ms=0, reason="max_concurrent"))
    for leg in (Leg.ENTRY, Leg.STOP, Leg.TAKE_PROFIT, Leg.CLOSE, None):
        m.fill(OrderFilled(symbol="BTCUSDT", leg=leg, side="SELL", quantity="0.004", price=105_650.3))
    assert value(m, "nancemakina_orders_placed_total", symbol="BTCUSDT", type="STOP_MARKET", side="SELL") == 1
    filled = {
        t: value(m, "nancemakina_orders_filled_total", symbol="BTCUSDT", type=t, side="SELL")
        for t in ("MARKET", "STOP_MARKET", "TAKE_PROFIT_MARKET")
    }
    assert filled == {"MARKET": 3, "STOP_MARKET": 1, "TAKE_PROFIT_MARKET": 1}
    assert value(m, "nancemakina_orders_failed_total", symbol="BTCUSDT", reason="rejected") == 1
    assert value(m, "nancemakina_orders_failed_total", symbol="BTCUSDT", reason="max_concurrent") == 1


def test_providers_are_evaluated_at_scrape_time():
    m = Metrics()
    calls = []
    depth = {"PositionLedger": 0}

    def provider() -> dict[str, int]:
        calls.append(1)
        return dict(depth)

    m.provide("actor_mailbox_depth", provider)
    assert calls == []
    assert value(m, "nancemakina_actor_mailbox_depth", actor="PositionLedger") == 0
    depth["PositionLedger"] = 7
    assert value(m, "nancemakina_actor_mailbox_depth", actor="PositionLedger") == 7
    assert len(calls) == 2
    m.unprovide("actor_mailbox_depth")
    assert value(m, "nancemakina_actor_mailbox_depth", actor="PositionLedger") is None


def test_uptime_follows_the_injected_clock():
    now = [100.0]
    m = Metrics(clock=lambda: now[0])
    now[0] = 142.5
    assert value(m, "nancemakina_uptime_seconds") == 42.5


def test_a_failing_provider_drops_its_family_only_and_counts_an_error():
    m = Metrics()

    def broken() -> float:
        raise RuntimeError("board gone")

    m.provide("request_weight_used", broken)
    m.provide("active_positions", lambda: {"USDT_M": 3})
    assert value(m, "nancemakina_active_positions", contract_type="USDT_M") == 3
    assert value(m, "nancemakina_errors_total", module="metrics", type="provider_request_weight_used") == 1


def test_unknown_snapshot_family_is_rejected():
    with pytest.raises(ValueError, match="unknown snapshot family"):
        Metrics().provide("mailbox", lambda: 1.0)
    assert "actor_mailbox_depth" in SNAPSHOTS


def test_label_values_are_sanitised_and_cardinality_is_capped():
    assert clean_label('a"b\nc{d}') == "a_b_c_d_"
    assert len(clean_label("x" * 500)) == 96
    assert clean_label("PairTimeframe[BTCUSDT,1m]") == "PairTimeframe[BTCUSDT,1m]"
    m = Metrics(max_series=2)
    for i in range(5):
        m.order_failed(f"SYM{i}", "binance_-2019")
    assert value(m, "nancemakina_orders_failed_total", symbol="SYM1", reason="binance_-2019") == 1
    assert value(m, "nancemakina_orders_failed_total", symbol=OVERFLOW, reason=OVERFLOW) == 3
    assert value(m, "nancemakina_orders_failed_total", symbol="SYM4", reason="binance_-2019") is None


def test_repeated_series_keep_counting_through_the_cached_children():
    m = Metrics(max_series=2)
    for _ in range(3):
        m.kline_processed("BTCUSDT", "1m", 0.001)
        m.order_failed("SYM0", "binance_-2019")
        m.order_failed("SYM1", "binance_-2019")
        m.order_failed("SYM2", "binance_-2019")  # third series: over the cap, every time
        m.order_failed("bad\nname", "x")  # over the cap too, whatever its cleaned form
    assert value(m, "nancemakina_klines_processed_total", symbol="BTCUSDT", interval="1m") == 3
    assert (
        value(m, "nancemakina_indicator_update_duration_seconds_count", symbol="BTCUSDT", interval="1m") == 3
    )
    assert value(m, "nancemakina_orders_failed_total", symbol="SYM0", reason="binance_-2019") == 3
    assert value(m, "nancemakina_orders_failed_total", symbol=OVERFLOW, reason=OVERFLOW) == 6
    assert value(m, "nancemakina_orders_failed_total", symbol="SYM2", reason="binance_-2019") is None


def test_an_unhashable_label_value_is_counted_without_the_cache():
    m = Metrics()
    m.alert(["not", "hashable"])  # type: ignore[arg-type] - a caller bug must not break counting
    m.alert(["not", "hashable"])  # type: ignore[arg-type]
    assert value(m, "nancemakina_alerts_total", kind=clean_label(["not", "hashable"])) == 2


def test_two_instances_do_not_collide():
    a, b = Metrics(), Metrics()
    a.alert("pair_parked")
    assert value(a, "nancemakina_alerts_total", kind="pair_parked") == 1
    assert value(b, "nancemakina_alerts_total", kind="pair_parked") is None
    assert a.registry is not b.registry


# -- HTTP ------------------------------------------------------------------------------------------------------
def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read().decode(), dict(resp.getheaders())
    finally:
        conn.close()


@pytest.fixture
def server_factory():
    started: list[MetricsServer] = []

    def make(metrics: Metrics, **kwargs) -> tuple[MetricsServer, int]:
        server = MetricsServer(metrics, "127.0.0.1", 0, **kwargs)
        started.append(server)
        return server, server.start()

    yield make
    for s in started:
        s.stop()


def test_http_endpoint_serves_parseable_text_on_an_ephemeral_port(server_factory):
    m = Metrics()
    exercise(m)
    server, port = server_factory(m)
    assert port > 0
    assert server.bound_port == port
    status, body, headers = get(port, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(body)}
    assert names >= EXPECTED_FAMILIES
    assert get(port, "/nope")[0] == 404


def test_http_scrape_reads_providers_fresh_each_time(server_factory):
    m = Metrics()
    weight = [10]
    m.provide("request_weight_used", lambda: {"USDT_M": weight[0]})
    _, port = server_factory(m)
    first = samples(get(port, "/metrics")[1])
    weight[0] = 990
    second = samples(get(port, "/metrics")[1])
    key = ("nancemakina_request_weight_used", frozenset({("market", "USDT_M")}))
    assert (first[key], second[key]) == (10, 990)


def test_klines_counted_soon_are_in_every_scrape_and_counted_once(server_factory):
    m = Metrics()
    key = ("nancemakina_klines_processed_total", frozenset({("symbol", "BTCUSDT"), ("interval", "1m")}))
    hist = (
        "nancemakina_indicator_update_duration_seconds_count",
        frozenset({("symbol", "BTCUSDT"), ("interval", "1m")}),
    )
    _, port = server_factory(m)
    for _ in range(3):
        m.kline_processed_soon("BTCUSDT", "1m", 0.0001)
    assert m.registry.get_sample_value(key[0], dict(key[1])) is None  # not counted yet: queued
    first = samples(get(port, "/metrics")[1])
    assert (first[key], first[hist]) == (3, 3)  # the scrape flushed them
    m.kline_processed_soon("BTCUSDT", "1m")  # no duration: counted, not timed
    threads = [
        threading.Thread(target=lambda: [m.kline_processed_soon("BTCUSDT", "1m", 0.0) for _ in range(500)])
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    flushed = 0
    while any(t.is_alive() for t in threads):
        flushed += m.flush()  # the pump, racing the pairs
    for t in threads:
        t.join()
    flushed += m.flush()
    assert flushed == 2_001
    again = samples(get(port, "/metrics")[1])
    assert (again[key], again[hist]) == (2_004, 2_003)
    assert m.flush() == 0


def test_healthz_follows_the_health_callable(server_factory):
    healthy = threading.Event()
    healthy.set()
    _, port = server_factory(Metrics(), health=healthy.is_set)
    assert get(port, "/healthz")[:2] == (200, "ok\n")
    healthy.clear()
    assert get(port, "/healthz")[0] == 503


def test_healthz_is_503_when_the_health_check_raises(server_factory):
    def boom() -> bool:
        raise RuntimeError

    _, port = server_factory(Metrics(), health=boom)
    assert get(port, "/healthz")[0] == 503


def test_stop_releases_the_port_and_is_idempotent():
    server = MetricsServer(Metrics(), "127.0.0.1", 0)
    port = server.start()
    assert server.start() == port
    server.stop()
    server.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    assert server.bound_port is None


def test_from_settings_respects_enabled():
    from nancemakina.actors.config import MonitoringSettings

    m = Metrics()
    assert MetricsServer.from_settings(MonitoringSettings(enabled=False), m) is None
    server = MetricsServer.from_settings(MonitoringSettings(host="127.0.0.1", prometheus_port=0), m)
    assert server is not None
    assert (server.host, server.port) == ("127.0.0.1", 0)


def test_snapshot_families_are_not_capped_because_they_cannot_accumulate():
    m = Metrics(max_series=2)
    m.provide("actor_mailbox_depth", lambda: {f"PairTimeframe[S{i},1m]": i for i in range(5)})
    for i in range(5):
        assert value(m, "nancemakina_actor_mailbox_depth", actor=f"PairTimeframe[S{i},1m]") == i
