"""The chaos soak, bounded: the bot against a free-running exchange process under a seeded schedule of every
fault, kill -9 with restart and SIGHUP reloads, judged by an observer that reads only the exchange (and the
ledger's decisions after the run). ``python bench/chaos_soak.py --duration 1800`` is the long run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DURATION_S = 150


@pytest.mark.soak
@pytest.mark.timeout(DURATION_S + 150)
def test_a_seeded_chaos_soak_holds_every_invariant(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "chaos_soak.py"), "--duration", str(DURATION_S), "--seed", "7",
         "--workdir", str(tmp_path / "work"), "--json", str(out)],
        capture_output=True, text=True, timeout=DURATION_S + 120, check=False, cwd=ROOT / "bench",
    )  # fmt: skip
    assert out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["max_entries_per_signal"] <= 1, result["duplicate_entries"]
    assert result["entries_added_to_open_position"] == 0
    assert result["signals_entered"] > 10, "the soak must trade to show anything"
    decisions = result["decisions"]
    assert (decisions["lost_count"], decisions["twice"], decisions["extra_count"]) == (0, 0, 0), decisions
    assert decisions["expected"] > 100
    assert not result["checks"]["failed"], result["checks"]["failed"]
    assert result["unprotected"]["clean"].get("max", 0.0) < 1.0, result["unprotected"]["longest"]
    assert not result["unprotected"]["still_open"]
    money = result["money"]  # every closed trade's PnL known, and the ledger's sums = the exchange's
    assert money["trades_closed"] > 5, money
    assert not money["pnl_unknown"], money
    assert all(abs(d) < 1e-6 for d in money["ledger_minus_exchange"].values()), money
    assert result["exit_code"] == 0
    assert sum(result["events"].values()) > 20
    assert result["events"].get("kill", 0) >= 1
    assert result["ok"], done.stdout[-3000:]


def test_the_same_seed_gives_the_same_schedule() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from _chaos_schedule import digest, schedule
    finally:
        sys.path.remove(str(ROOT / "bench"))
    assert digest(schedule(7, 1800)) == digest(schedule(7, 1800))
    assert digest(schedule(7, 1800)) != digest(schedule(8, 1800))
    kinds = {e.kind for e in schedule(7, 1800)}
    assert kinds >= {"http", "ws-frame", "drop", "stall", "latency", "listen-key", "reject", "expire-stop",
                     "clock-skew", "outage", "kill", "reload"}  # fmt: skip
