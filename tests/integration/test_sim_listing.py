"""The local exchange lists exactly the symbols it has data for, with real filters when it can."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import requests

from nancemakina.actors.domain.model import ContractType
from nancemakina.actors.exchange.instruments import bundled_exchange_info
from tests.integration.sim_support import BTC, running


def test_only_replayed_symbols_are_listed_and_others_are_refused():
    with running(data=(BTC, ("SOLUSDT", BTC), ("FOOUSDT", BTC))) as ex:
        info = requests.get(f"{ex.fapi_url}/v1/exchangeInfo", timeout=5).json()
        listed = {s["symbol"]: s for s in info["symbols"]}
        assert set(listed) == {"BTCUSDT", "SOLUSDT", "FOOUSDT"}
        sol = {f["filterType"]: f for f in listed["SOLUSDT"]["filters"]}
        assert sol["PRICE_FILTER"]["tickSize"] == "0.0100"  # the real snapshot's, not ETHUSDT's
        assert requests.get(f"{ex.dapi_url}/v1/exchangeInfo", timeout=5).json()["symbols"] == []
        assert ex.status()["syntheticSymbols"] == ["FOOUSDT"]
        answer = requests.get(
            f"{ex.fapi_url}/v1/klines", params={"symbol": "ETHUSDT", "interval": "1m"}, timeout=5
        )
        assert (answer.status_code, answer.json()) == (400, {"code": -1121, "msg": "Invalid symbol."})


def test_exchange_cli_takes_a_saved_exchange_info_and_announces_synthesis(tmp_path):
    doc = copy.deepcopy(dict(bundled_exchange_info(ContractType.USDT_M)))
    foo = next(s for s in doc["symbols"] if s["symbol"] == "ETHUSDT")
    foo.update(symbol="FOOUSDT", pair="FOOUSDT", baseAsset="FOO")
    doc["symbols"] = [foo]
    (tmp_path / "info.json").write_text(json.dumps(doc))
    exe = str(Path(sys.executable).with_name("nancemakina"))
    args = [
        exe,
        "exchange",
        "--port",
        "0",
        "--paused",
        "--data",
        f"FOOUSDT={BTC}",
        "--data",
        f"BARUSDT={BTC}",
    ]
    proc = subprocess.Popen(
        [*args, "--exchange-info", "info.json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        line = ""
        while "local exchange on" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "local exchange on" in line
    assert "warning: BARUSDT is in no exchange info" in err
    assert "FOOUSDT" not in err
