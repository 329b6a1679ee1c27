"""What an operator reads in the log: one INFO line per entry, protective order, exit, pause and resume,
each under its actor's name (never the name twice), and nothing above INFO when nothing went wrong —
python-binance's complaints about the sockets we close on purpose included."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from nancemakina.actors.messages import PauseEntries, ResumeEntries
from nancemakina.actors.ops.logs import setup_logging
from tests.integration.system_support import Cleanup, SliceMaker, bot_config, load, save_config


@pytest.fixture
def records() -> Iterator[list[dict[str, Any]]]:
    """Every record the bot logs at INFO and above, with stdlib logging routed in as ``run`` sets it up."""
    setup_logging(level="INFO")
    seen: list[dict[str, Any]] = []
    sink = logger.add(lambda m: seen.append(m.record), level="INFO")
    try:
        yield seen
    finally:
        logger.remove(sink)
        logging.basicConfig(handlers=[], force=True)


def test_a_clean_replay_logs_the_trades_and_nothing_alarming(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup, records: list[dict[str, Any]]
) -> None:
    data = slices(3000)
    config = load(save_config(tmp_path / "config.yaml", bot_config(tmp_path, [data.btc, data.eth])))
    daemon = cleanup.daemon(config)
    daemon.start()
    daemon.refs.tell_executor("ETHUSDT", PauseEntries(symbol="ETHUSDT"))
    daemon.refs.tell_executor("ETHUSDT", ResumeEntries(symbol="ETHUSDT"))
    assert daemon.wait() == 0

    lines = [(r["extra"].get("actor", ""), r["message"]) for r in records]
    for actor, text in (
        ("pair:BTCUSDT:executor", "entry filled: "),
        ("pair:BTCUSDT:executor", "stop-loss placed: "),
        ("pair:BTCUSDT:executor", "take-profit placed: "),
        ("ledger", "closed by stop_loss: "),
        ("ledger", "closed by take_profit: "),
        ("pair:ETHUSDT:executor", "paused: no new entries for ETHUSDT"),
        ("pair:ETHUSDT:executor", "resumed: entries allowed again for ETHUSDT"),
    ):
        assert any(a == actor and text in m for a, m in lines), f"no {actor} line with {text!r}"
    exit_line = next(m for a, m in lines if a == "ledger" and "closed by" in m)
    assert "realised PnL" in exit_line
    assert "fees" in exit_line
    assert not [(a, m) for a, m in lines if a.startswith("pair:") and a in m]  # the actor's name once
    alarming = [
        (r["level"].name, r["extra"].get("actor"), r["message"]) for r in records if r["level"].no > 20
    ]
    assert alarming == []
