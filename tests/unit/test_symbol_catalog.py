"""Where offline symbols' exchange filters come from: given files, pinned bundled entries, the snapshot, synthesis."""

from __future__ import annotations

import copy
import gzip
import json
from decimal import Decimal

import pytest

from nancemakina.actors.domain.model import ContractType
from nancemakina.actors.exchange.instruments import (
    ExchangeInfoError,
    SymbolCatalog,
    bundled_exchange_info,
    read_exchange_info,
)

USD, COIN = ContractType.USDT_M, ContractType.COIN_M


def saved(tmp_path, name: str, symbols: list[dict], *, gz: bool = False):
    doc = copy.deepcopy(dict(bundled_exchange_info(USD))) | {"symbols": symbols}
    data = json.dumps(doc).encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def entry(symbol: str, *, tick: str = "0.001", step: str = "1", notional: str = "5") -> dict:
    base = copy.deepcopy(next(s for s in bundled_exchange_info(USD)["symbols"] if s["symbol"] == "ETHUSDT"))
    base.update(symbol=symbol, pair=symbol, baseAsset=symbol.removesuffix("USDT"))
    for f in base["filters"]:
        if f["filterType"] == "PRICE_FILTER":
            f.update(tickSize=tick)
        elif f["filterType"] in {"LOT_SIZE", "MARKET_LOT_SIZE"}:
            f.update(stepSize=step, minQty=step)
        elif f["filterType"] == "MIN_NOTIONAL":
            f.update(notional=notional)
    return base


def test_pinned_entries_come_before_the_snapshot_and_the_snapshot_before_synthesis():
    catalog = SymbolCatalog()
    btc = catalog.listing("BTCUSDT", USD)
    assert btc.source == "bundled"
    assert btc.spec.min_notional == Decimal(10)  # the pinned 2022 entry the bundled baselines rest on
    sol = catalog.listing("SOLUSDT", USD)
    assert sol.source == "Binance snapshot 2025-11-26"
    assert sol.spec.tick_size == Decimal("0.01")
    assert not sol.synthetic
    assert catalog.listing("BTCUSD_PERP", COIN).spec.contract_size == 100
    assert catalog.synthesised == {}


def test_a_symbol_nobody_lists_is_synthesised_and_says_so():
    catalog = SymbolCatalog()
    foo = catalog.listing("FOOUSDT", USD, [1.2345, 1.2346])
    assert foo.synthetic
    assert foo.spec.tick_size == Decimal("0.0001")
    assert "FOOUSDT" in foo.warning()
    assert "synthesised from ETHUSDT" in foo.warning()
    assert "--exchange-info" in foo.warning()
    assert list(catalog.synthesised) == ["FOOUSDT"]
    assert catalog.listing("XYZUSD_PERP", COIN, [10.5]).synthetic
    assert catalog.listing("SOLUSDT", USD).warning() == ""


@pytest.mark.parametrize("gz", [False, True])
def test_a_saved_exchange_info_file_wins(tmp_path, gz):
    path = saved(tmp_path, "info.json.gz" if gz else "info.json", [entry("FOOUSDT"), entry("BTCUSDT")], gz=gz)
    market, entries = read_exchange_info(path)
    assert market is USD
    assert set(entries) == {"FOOUSDT", "BTCUSDT"}
    catalog = SymbolCatalog([path])
    foo = catalog.listing("FOOUSDT", USD)
    assert (foo.source, foo.spec.tick_size, foo.spec.min_notional) == (
        str(path),
        Decimal("0.001"),
        Decimal(5),
    )
    assert catalog.listing("BTCUSDT", USD).source == str(path)
    assert catalog.listing("ETHUSDT", USD).source == "bundled"
    assert catalog.listing("FOOUSDT", COIN, [1.0]).synthetic  # a USDⓈ-M file says nothing about COIN-M


def test_coin_m_files_are_told_by_contract_size_and_bad_files_are_named(tmp_path):
    coin = tmp_path / "coin.json"
    coin.write_text(json.dumps(bundled_exchange_info(COIN)))
    assert read_exchange_info(coin)[0] is COIN
    (tmp_path / "empty.json").write_text('{"symbols": []}')
    (tmp_path / "broken.json").write_text("{")
    broken_entry = entry("FOOUSDT")
    broken_entry["filters"] = []
    for name, bad in (("empty.json", None), ("broken.json", None), ("filters.json", [broken_entry])):
        path = saved(tmp_path, name, bad) if bad else tmp_path / name
        with pytest.raises(ExchangeInfoError, match=name.split(".")[0] if bad is None else "FOOUSDT"):
            SymbolCatalog([path])
    with pytest.raises(ExchangeInfoError, match=r"missing\.json"):
        read_exchange_info(tmp_path / "missing.json")
