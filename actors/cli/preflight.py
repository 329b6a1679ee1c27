"""One pre-flight: the checks ``run`` makes before it trades, which ``check-config`` makes too.

Offline, from the config and the machine: the config's own start-up rules (live confirmation, credentials,
CPUs), the pairs ``run`` would trade, the replay's data files and the symbols they give the local exchange,
the metrics port, the local exchange's port and the control socket. The checks that need the exchange
(does it list every pair, does it accept the key) are named as skipped, or made with ``online``: then the
connections ``run`` opens are opened and closed again, so both say the same thing in the same words.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..backtest.kline_files import DataFileError, load_klines, parse_data_arg
from ..config import Mode, StartupError
from ..connections import Connections, unlisted, unlisted_hint
from ..exchange.errors import ExchangeError
from ..ops.control_server import control_socket_taken
from ..sim.launch import trading_pairs

if TYPE_CHECKING:
    from ..config import Config, PairSettings


@dataclass(frozen=True, slots=True)
class Preflight:
    """What the checks found."""

    pairs: Mapping[str, PairSettings]
    """What ``run`` would trade, by API symbol (with no pair configured, a replay's data symbols)."""
    errors: tuple[str, ...]
    """One line each, naming the setting to change; ``run`` refuses to start on any."""
    skipped: tuple[str, ...]
    """Checks that need the exchange and were not made (``online=False``); ``run`` makes them."""


def preflight(config: Config, *, online: bool = False) -> Preflight:
    """Every check ``run`` makes before it trades; those needing the exchange only when ``online``."""
    try:
        pairs = trading_pairs(config)
    except DataFileError:  # a data file with no symbol: reported with the data files below
        pairs = config.enabled_pairs()
    errors = list(config.startup_errors())
    data = _replay_data(config, pairs)
    if not pairs and not data:
        errors.append("pairs: nothing to trade (no pair enabled); list one under pairs, e.g. BTC_USDT: {}")
    errors += data
    errors += _listening(config)
    needs_exchange = _exchange_checks(config)
    if online and needs_exchange and not errors:
        errors += _online(config, pairs)
    skipped = () if online else needs_exchange
    return Preflight(pairs=pairs, errors=tuple(errors), skipped=skipped)


def _local_replay(config: Config) -> bool:
    return config.api.mode is Mode.REPLAY and config.replay.exchange_url is None


def _replay_data(config: Config, pairs: Mapping[str, PairSettings]) -> list[str]:
    """The in-process exchange's data files read as ``run`` reads them, and every pair among them."""
    if not _local_replay(config):
        return []
    errors, listed = [], set()
    for path in config.replay_data_paths():
        try:
            symbol, file = parse_data_arg(str(path))
            load_klines(file, symbol=symbol)  # a missing file is a DataFileError too
        except (DataFileError, OSError) as exc:
            errors.append(f"replay.data: {exc}")
            continue
        listed.add(symbol)
    if not errors:
        errors += unlisted(pairs, dict.fromkeys(listed), hint=unlisted_hint(config, listed))
    return errors


def _listening(config: Config) -> list[str]:
    """The ports and the socket ``run`` listens on must be free."""
    errors = []
    m = config.monitoring
    if m.enabled and m.prometheus_port and (why := _port_taken(m.host, m.prometheus_port)):
        errors.append(
            f"monitoring.prometheus_port: cannot listen on {m.host}:{m.prometheus_port}: {why}; "
            "pick another port (0: any free one), or set monitoring.enabled: false"
        )
    if _local_replay(config) and config.replay.port and (why := _port_taken("127.0.0.1", config.replay.port)):
        errors.append(
            f"replay.port: cannot listen on 127.0.0.1:{config.replay.port}: {why}; "
            "pick another port (0: any free one)"
        )
    problem = control_socket_taken(config.control_socket_path())
    if problem is not None:
        errors.append(f"control.socket_path: {problem}")
    return errors


def _port_taken(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (as the servers bind it: address reuse on), or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
    return None


def _exchange_checks(config: Config) -> tuple[str, ...]:
    """The checks that need the exchange in this mode, named."""
    mode = config.api.mode
    if _local_replay(config):
        return ()
    if mode is Mode.REPLAY:
        return ("the local exchange at replay.exchange_url answers and lists every pair",)
    venue = "Binance Futures testnet" if mode is Mode.TESTNET else "Binance Futures"
    listed = f"{venue} lists every pair"
    if mode is Mode.PAPER:
        source = "the local exchange at replay.exchange_url" if config.replay.exchange_url else "Binance"
        return (f"{source} lists every pair (market data)",)
    return (listed, f"{venue} accepts the API key and secret")


def _online(config: Config, pairs: Mapping[str, PairSettings]) -> list[str]:
    """Open the connections ``run`` opens (listing every pair), read the balances with the key, close."""
    try:
        connections = Connections(config, pairs)
    except StartupError as exc:
        return list(exc.errors)
    except (ExchangeError, OSError) as exc:
        return [f"api.mode: cannot reach the exchange of mode {config.api.mode}: {exc}"]
    try:
        if config.api.mode in {Mode.TESTNET, Mode.LIVE}:
            gateway = connections.gateway()
            for contract in connections.contracts:
                gateway.balances(contract)
    except ExchangeError as exc:
        return [f"api.binance_api_key: the exchange refused the key or secret: {exc}"]
    finally:
        connections.close()
    return []
