"""Starting the in-process local exchange for the bot: a replay of ``replay.data``, or paper trading's broker.

A replay with no pair configured trades every replayed symbol (``trading_pairs``). Both exchanges start
from the backtest's wallets (``backtesting.initial_balance_*``) and fill with its slippage and fees, so
replay, paper and backtest agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal

from ..backtest.kline_files import parse_data_arg
from ..config import Config, Mode, PairSettings
from ..domain.model import ContractType
from .config import SimConfig
from .server import LocalExchange


def trading_pairs(config: Config) -> dict[str, PairSettings]:
    """The enabled pairs; in replay with no pair configured, every replayed symbol on the global settings.

    So the bare ``nancemakina run`` (no config file) trades the bundled data, as the README promises.
    """
    pairs = config.enabled_pairs()
    if pairs or config.api.mode is not Mode.REPLAY or config.replay.exchange_url is not None:
        return pairs
    symbols = [parse_data_arg(str(p))[0] for p in config.replay_data_paths()]
    return {s: config.settings_for(s) for s in symbols}


def _sim_balances(config: Config, pairs: Mapping[str, PairSettings]) -> dict[str, Decimal]:
    """Starting wallets of a simulated account: the backtest's, so replay, paper and backtest agree."""
    bt = config.backtesting
    balances = {"USDT": Decimal(str(bt.initial_balance_usdt))}
    balances.update({coin: Decimal(str(v)) for coin, v in bt.initial_balance_coin.items()})
    for s in pairs.values():
        if s.contract_type is ContractType.COIN_M:
            balances.setdefault(s.symbol.removesuffix("_PERP").removesuffix("USD"), Decimal(1))
    return balances


def replay_exchange(config: Config, pairs: Mapping[str, PairSettings]) -> LocalExchange:
    """The in-process exchange of a replay: ``replay.data`` at ``replay.speed``, paused until started."""
    bt = config.backtesting
    balances = _sim_balances(config, pairs)
    speed = config.replay.speed
    sim = SimConfig(
        port=config.replay.port,
        speed=math.inf if speed == "max" else float(speed),
        start_ms=config.replay.start_ms,
        paused=True,
        # at max speed nobody watches the candle form: one unclosed update keeps the protocol honest
        updates_per_candle=1 if speed == "max" else 3,
        slippage_pct=bt.slippage_percent,
        fee_pct=bt.fee_percent,
        balances=balances,
        exchange_info=tuple(str(p) for p in config.exchange_info_paths()),
        funding_rates=config.funding_rate_args(),
    )
    data = [parse_data_arg(str(p)) for p in config.replay_data_paths()]
    return LocalExchange(data, sim).start()


def paper_broker(config: Config, pairs: Mapping[str, PairSettings]) -> LocalExchange:
    """The simulated broker of paper trading: no data of its own, prices fed from the live stream."""
    bt = config.backtesting
    sim = SimConfig(
        port=0,
        slippage_pct=bt.slippage_percent,
        fee_pct=bt.fee_percent,
        balances=_sim_balances(config, pairs),
    )
    return LocalExchange([], sim).start()
