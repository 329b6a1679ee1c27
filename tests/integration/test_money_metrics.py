"""An operator follows the money: a replay's /metrics count the stop-loss and take-profit fills, the closed
trades by exit reason, the realised PnL and the fees, and they equal what ``nancemakina report`` writes."""

from __future__ import annotations

import csv
import json
import urllib.request
from collections import Counter
from decimal import Decimal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from nancemakina.actors.cli.main import main
from tests.integration.system_support import Cleanup, SliceMaker, bot_config, load, save_config
from tests.waiting import wait_until


def _grouped(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def total(samples: list[tuple[dict[str, str], float]], **match: str) -> Decimal:
    return sum(
        (Decimal(repr(v)) for labels, v in samples if all(labels.get(k) == x for k, x in match.items())),
        Decimal(0),
    )


def test_a_replays_metrics_show_its_fills_trades_and_pnl_as_the_report_does(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(3000)
    raw = bot_config(tmp_path, [data.btc, data.eth], replay={"exit_at_end": False})
    raw["monitoring"] = {"enabled": True, "prometheus_port": 0}
    path = save_config(tmp_path / "config.yaml", raw)
    daemon = cleanup.daemon(load(path))
    daemon.start()
    replay = daemon.replay
    assert replay is not None
    wait_until(lambda: replay.finished(timeout_s=0), 180, "the end of the replay")
    server = daemon.access.telemetry.server
    assert server is not None
    assert server.bound_port is not None
    metrics = _grouped_scrape(server.bound_port)
    daemon.shutdown()
    assert main(["report", "--config", str(path), "--out", str(tmp_path / "report")]) == 0
    trades = list(csv.DictReader((tmp_path / "report" / "trades.csv").open()))

    filled = metrics["nancemakina_orders_filled_total"]
    assert total(filled, type="STOP_MARKET") > 0
    assert total(filled, type="TAKE_PROFIT_MARKET") > 0
    by_reason = Counter(t["exit_reason"] for t in trades)
    closed = metrics["nancemakina_trades_closed_total"]
    assert {r: int(total(closed, reason=r)) for r in by_reason} == dict(by_reason)
    assert int(total(closed)) == len(trades)
    assert total(filled, type="STOP_MARKET") == by_reason["stop_loss"]
    assert total(filled, type="TAKE_PROFIT_MARKET") == by_reason["take_profit"]
    assert total(metrics["nancemakina_realized_pnl"]) == sum(Decimal(t["pnl"]) for t in trades)
    still_open = json.loads((tmp_path / "report" / "summary.json").read_text())["still_open"]
    paid = sum(Decimal(t["fees"]) for t in trades) + sum(Decimal(repr(p["entry_fee"])) for p in still_open)
    assert total(metrics["nancemakina_fees_paid_total"]) == paid > 0


def _grouped_scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return _grouped(response.read().decode())
