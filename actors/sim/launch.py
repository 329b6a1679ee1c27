"""The in-process local exchange of replay and paper modes: its start-up, wallets and lock-step marker.

``trading_pairs`` lives here too: the replay wallets depend on it, and a bare ``nancemakina run`` (no
config file) trades every replayed symbol on the global settings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from loguru import logger

from ..backtest.kline_files import parse_data_arg
from ..config import Config, Mode, PairSettings
from ..domain.model import ContractType
from ..exchange.parse import parse_user_event

if TYPE_CHECKING:
    from ..exchange.types import UserEvent
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


@dataclass(frozen=True, slots=True, kw_only=True)
class SimStep:
    """The local exchange's lock-step marker on a user-data stream (replay only)."""

    step_open_ms: int
    symbols: tuple[str, ...] = ()
    """Symbols with a candle in this step (the others owe the pacer nothing)."""


def _sim_balances(config: Config) -> dict[str, Decimal]:
    """Starting wallets of a simulated account: the backtest's, so replay, paper and backtest agree."""
    bt = config.backtesting
    balances = {"USDT": Decimal(str(bt.initial_balance_usdt))}
    balances.update({coin: Decimal(str(v)) for coin, v in bt.initial_balance_coin.items()})
    for s in trading_pairs(config).values():
        if s.contract_type is ContractType.COIN_M:
            balances.setdefault(s.symbol.removesuffix("_PERP").removesuffix("USD"), Decimal(1))
    return balances


def replay_exchange(config: Config) -> LocalExchange:
    from .config import SimConfig  # noqa: PLC0415 - replay mode only
    from .server import LocalExchange  # noqa: PLC0415

    bt = config.backtesting
    balances = _sim_balances(config)
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
    )
    data = [parse_data_arg(str(p)) for p in config.replay_data_paths()]
    return LocalExchange(data, sim).start()


def archive_previous_ledger(config: Config) -> None:
    """A replay against a fresh in-process exchange starts from a fresh ledger.

    The previous run's ledger is kept as ``ledger.prev.sqlite3`` so ``report`` shows one run, not a mix.
    """
    state = config.state_path()
    current = state / "ledger.sqlite3"
    if not current.exists():
        return
    for suffix in ("", "-wal", "-shm"):
        old = state / f"ledger.sqlite3{suffix}"
        if old.exists():
            old.replace(state / f"ledger.prev.sqlite3{suffix}")
    logger.info(f"replay: previous ledger kept as {state / 'ledger.prev.sqlite3'}")


def paper_broker(config: Config) -> LocalExchange:
    """The simulated broker of paper trading: no data of its own, prices fed from the live stream."""
    from .config import SimConfig  # noqa: PLC0415 - paper mode only
    from .server import LocalExchange  # noqa: PLC0415

    bt = config.backtesting
    sim = SimConfig(
        port=0, slippage_pct=bt.slippage_percent, fee_pct=bt.fee_percent, balances=_sim_balances(config)
    )
    return LocalExchange([], sim).start()


def parse_with_marker(payload: Mapping[str, Any], contract: ContractType) -> UserEvent | SimStep | None:
    data = payload.get("data", payload)
    if isinstance(data, Mapping) and data.get("e") == "SIM_STEP":
        return SimStep(step_open_ms=int(data["T"]), symbols=tuple(str(x) for x in data.get("s", ())))
    return parse_user_event(payload, contract)
