"""The state directory against a free-running exchange: one bot per directory, and no ledger traded on or
lost that must not be. Judged by the files, the exit codes, and the first bot still answering."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from tests.integration.system_support import ROOT, Cleanup, SliceMaker, ledger, save_config
from tests.integration.venue_support import START_MS, read_ledger, venue_config
from tests.waiting import wait_until

SPEED = 300


def shell(config: Path, command: str) -> dict[str, object]:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("nancemakina")), "shell", "--config", str(config), "-c", command,
         "--json"],
        capture_output=True, text=True, timeout=30, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def decisions(state: Path) -> int:
    return read_ledger(state, lambda s: len(s.decisions()), 0)


def test_a_second_run_on_the_same_state_directory_is_refused_and_touches_nothing(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(900)
    venue = cleanup.venue([data.btc, data.eth], tmp_path / "venue.log", speed=SPEED, start_ms=START_MS)
    config = venue_config(tmp_path, [data.btc, data.eth], venue.url)
    state = tmp_path / "state"
    first = cleanup.bot(config, tmp_path / "bot1.log")
    wait_until(lambda: decisions(state) >= 2, 90.0, "the first bot to trade")
    ledger_file = state / "ledger.sqlite3"
    inode = ledger_file.stat().st_ino

    # A new user's `nancemakina run` in the same place: the default replay with its own in-process exchange.
    raw = yaml.safe_load(config.read_text())
    del raw["replay"]["exchange_url"]
    accidental = save_config(tmp_path / "accidental.yaml", raw)
    for second_config in (accidental, config):
        second = cleanup.bot(second_config, tmp_path / "bot2.log")
        assert second.wait(30.0) == 2, second.output()[-2000:]
    refusals = [line for line in second.output().splitlines() if "in use" in line]
    assert len(refusals) == 2, second.output()
    assert f"pid {first.process.pid}" in refusals[0]
    assert "Traceback" not in second.output()

    assert ledger_file.stat().st_ino == inode, "the running bot's ledger was moved"
    assert not (state / "ledger.prev.sqlite3").exists()
    assert first.process.poll() is None, first.output()[-3000:]
    before = decisions(state)
    wait_until(lambda: decisions(state) > before, 60.0, "the first bot to go on recording decisions")
    health = shell(config, "health")
    assert health["status"] == "ok", health

    first.signal(signal.SIGTERM)
    assert first.wait(30.0) == 0, first.output()[-3000:]
    report = subprocess.run(
        [str(Path(sys.executable).with_name("nancemakina")), "report", "--config", str(config), "--out",
         str(tmp_path / "report")],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "report" / "decisions.csv").read_text().count("\n") > before


def test_a_damaged_or_emptied_ledger_is_refused_with_what_to_do_and_kept_as_it_was(
    tmp_path: Path, slices: SliceMaker, cleanup: Cleanup
) -> None:
    data = slices(900)
    venue = cleanup.venue([data.btc, data.eth], tmp_path / "venue.log", speed=SPEED, start_ms=START_MS)
    config = venue_config(tmp_path, [data.btc, data.eth], venue.url)
    state = tmp_path / "state"
    first = cleanup.bot(config, tmp_path / "bot1.log")
    wait_until(lambda: decisions(state) >= 2, 90.0, "the bot to record decisions")
    first.signal(signal.SIGKILL)
    first.wait(10.0)
    ledger_file, wal = state / "ledger.sqlite3", state / "ledger.sqlite3-wal"
    saved = tmp_path / "saved"
    saved.mkdir()
    for f in state.glob("ledger.sqlite3*"):
        shutil.copy(f, saved / f.name)
    with ledger(saved.parent / "saved") as store:
        recorded = len(store.decisions())

    with ledger_file.open("r+b") as f:  # garbage over the header
        f.write(b"\x13\x37" * 50)
    wal_before = wal.read_bytes() if wal.exists() else None
    bot = cleanup.bot(config, tmp_path / "bot2.log")
    assert bot.wait(30.0) == 2, bot.output()[-2000:]
    assert "is damaged" in bot.output()
    assert "move the files aside" in bot.output()
    assert (wal.read_bytes() if wal.exists() else None) == wal_before, "the WAL must be kept"

    ledger_file.write_bytes(b"")  # truncated
    bot = cleanup.bot(config, tmp_path / "bot3.log")
    assert bot.wait(30.0) == 2, bot.output()[-2000:]
    assert "is empty (0 bytes)" in bot.output()
    assert ledger_file.stat().st_size == 0, "refused, not taken for a new ledger"

    for f in saved.glob("ledger.sqlite3*"):  # restored from the backup: it starts, with its history
        shutil.copy(f, state / f.name)
    bot = cleanup.bot(config, tmp_path / "bot4.log")
    wait_until(lambda: decisions(state) > recorded, 90.0, "the restored ledger to trade on")
    bot.signal(signal.SIGTERM)
    assert bot.wait(30.0) == 0, bot.output()[-3000:]
