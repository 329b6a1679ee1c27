"""The typed configuration tree: ``Config``, its process-wide sections, and the error that rejects a config.

The pair sections (``global_settings``, ``pairs``) and each pair's effective settings are
``pair_settings``'; the field types every section shares are ``field_types``'. The schema never sees raw
YAML (``loader`` does); a problem becomes one ``<yaml.path>: <message>, got <value>`` line in a single
:class:`ConfigError` (``errors`` renders them).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ..bundled import bundled_path
from ..runtime.child_spec import RestartPolicy
from .field_types import (
    CoinName,
    CpuSet,
    IsoTime,
    LogLevel,
    LoopbackUrl,
    NonNeg,
    NonNegInt,
    Port,
    Positive,
    ReplaySpeed,
    Section,
    case_insensitive,
    iso_to_ms,
)
from .pair_settings import GlobalSettings, PairOverrides, PairSettings, base_coin, resolve_pair

_MAX_PRUNE_ROUNDS = 5

ENV_API_KEY = "NANCEMAKINA_API_KEY"
ENV_API_SECRET = "NANCEMAKINA_API_SECRET"  # noqa: S105 - the variable's name, not a secret


class ConfigError(Exception):
    """The configuration cannot be used; ``errors`` lists every problem found, one line each."""

    def __init__(self, errors: tuple[str, ...] | list[str], *, source: str = "<config>") -> None:
        self.errors: tuple[str, ...] = tuple(errors)
        self.source = source
        super().__init__(self.__str__())

    def __str__(self) -> str:
        lines = "\n".join(f"  {e}" for e in self.errors)
        return f"invalid configuration {self.source} ({len(self.errors)} error(s)):\n{lines}"


class StartupError(ConfigError):
    """The bot cannot start with this configuration here and now: a port in use, a symbol the exchange does
    not list, a data file that cannot be read. Each line names the setting to change."""

    def __str__(self) -> str:
        return "\n".join(self.errors)


class Mode(StrEnum):
    """Where orders go: recorded data, simulated fills on live data, the testnet, or real money."""

    REPLAY = "replay"
    PAPER = "paper"
    TESTNET = "testnet"
    LIVE = "live"


class ApiSettings(Section):
    mode: Annotated[Mode, case_insensitive(*Mode)] = Mode.REPLAY
    binance_api_key: SecretStr | None = None
    binance_api_secret: SecretStr | None = None
    testnet: bool = False
    live_trading_confirmed: bool = False
    recv_window_ms: int = Field(default=5000, ge=1, le=60000)
    request_timeout_s: Positive = 10.0


class LoggingSettings(Section):
    level: Annotated[LogLevel, case_insensitive(*get_args(LogLevel))] = "INFO"
    file: str | None = None
    rotation_size_mb: Positive = 10.0
    rotation_backup_count: NonNegInt = 5
    # ``json`` would shadow BaseModel.json(); the YAML key stays ``json``.
    json_format: bool = Field(default=False, alias="json")


class MonitoringSettings(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    prometheus_port: Port = 8000


class BacktestingSettings(Section):
    start_date: IsoTime = None
    end_date: IsoTime = None
    initial_balance_usdt: Positive = 10_000.0
    initial_balance_coin: dict[CoinName, Positive] = Field(default_factory=dict)
    slippage_percent: NonNeg = 0.01
    fee_percent: NonNeg = 0.04
    exchange_info: tuple[str, ...] = ()
    """Saved ``GET /fapi/v1/exchangeInfo`` / ``/dapi/v1/exchangeInfo`` answers (JSON or .json.gz) whose
    symbols' filters the backtest, the replay's local exchange and ``report`` use before the bundled ones."""

    @property
    def start_ms(self) -> int | None:
        return None if self.start_date is None else iso_to_ms(self.start_date)

    @property
    def end_ms(self) -> int | None:
        return None if self.end_date is None else iso_to_ms(self.end_date)

    def dates_inverted(self) -> bool:
        """True when both dates are set and end is not after start (the error case)."""
        start, end = self.start_ms, self.end_ms
        return start is not None and end is not None and end <= start

    def coin_balance(self, symbol: str) -> float:
        """Starting coin balance for a COIN-M symbol; 1.0 coin when ``initial_balance_coin`` omits it."""
        return self.initial_balance_coin.get(base_coin(symbol), 1.0)


class ReplaySettings(Section):
    data: tuple[str, ...] = (
        "data/BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv",
        "data/ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv",
    )
    speed: ReplaySpeed = "max"
    exit_at_end: bool = True
    start: IsoTime = None
    port: Port = 0
    funding_rates: tuple[str, ...] = ()
    """Funding-rate archive files (``[SYMBOL=]FILE``): served by the local exchange as ``premiumIndex``
    and read by the backtest (``backtest.funding_files``)."""
    exchange_url: LoopbackUrl = None
    """Use an already-running local exchange (``nancemakina exchange``) at this loopback URL instead of
    starting one in-process; ``data``, ``speed``, ``start`` and ``port`` are then that exchange's."""

    @property
    def start_ms(self) -> int | None:
        return None if self.start is None else iso_to_ms(self.start)


class SupervisorSettings(Section):
    pair_max_restarts: NonNegInt = 5
    pair_restart_period_s: Positive = 60.0
    backoff_initial_s: NonNeg = 0.1
    backoff_max_s: NonNeg = 10.0
    shared_max_restarts: NonNegInt = 3
    shared_restart_period_s: Positive = 60.0
    shutdown_timeout_s: Positive = 10.0
    watch_config: bool = True
    gil_switch_interval_ms: float = Field(default=0.5, ge=0.05, le=100.0)
    """``sys.setswitchinterval`` for the process: how long a busy thread (the WebSocket reader in a burst
    of candle closes) may keep the GIL from a woken actor. Python's own 5 ms shows up whole in the signal
    latency tail; 0.5 ms cut p99 by a third in ``bench/live_latency.py``."""
    entry_priority_hold_ms: float = Field(default=2.0, ge=0.0, le=100.0)
    """While a pair's entry is on its way to its executor, the market-data reader pauses before each frame
    so the order goes out first (``actors/runtime/scheduling.py``), for at most this long after the entry
    was told; 0 turns the pause off."""
    candle_handoff_ms: float = Field(default=1.0, ge=0.0, le=100.0)
    """A streamed closed candle a pair decides on is decided before the market-data reader reads on: by the
    reader itself when the pair is idle (``Actor.run_here``), else told and waited for, at most this long
    (``CandleTurn`` in ``actors/runtime/scheduling.py``), so candles are decided in arrival order instead of
    in whatever order 250 woken threads win the GIL; 0 turns both off (told, never waited for)."""
    cpu_affinity: CpuSet | Literal["auto"] | None = "auto"
    """CPUs every thread of the process runs on (``actors/runtime/cpu_affinity.py``): ``auto`` (default) one
    CPU, the least busy at start; a list, those; None leaves them wherever systemd or the shell started the
    process. One CPU halved the signal → order p99 in ``bench/live_latency.py``: the GIL hands over between
    threads sharing one run queue instead of waking them on a busy core."""

    def pair_policy(self) -> RestartPolicy:
        """Each pair supervisor's restart budget and back-off."""
        return self._policy(self.pair_max_restarts, self.pair_restart_period_s)

    def shared_policy(self) -> RestartPolicy:
        """The shared supervisor's restart budget and back-off."""
        return self._policy(self.shared_max_restarts, self.shared_restart_period_s)

    def _policy(self, intensity: int, period_s: float) -> RestartPolicy:
        return RestartPolicy(
            intensity=intensity,
            period_s=period_s,
            backoff_initial_s=self.backoff_initial_s,
            backoff_max_s=self.backoff_max_s,
        )


class ExecutionSettings(Section):
    stop_placement_retries: NonNegInt = 3
    reconcile_interval_s: Positive = 30.0
    flat_close_grace_s: NonNeg = 2.0
    on_unprotected_position: Literal["repair", "flatten"] = "repair"
    on_unknown_position: Literal["adopt", "flatten"] = "adopt"
    order_timeout_s: Positive = 10.0


class ControlSettings(Section):
    socket_path: str | None = None


_SECTIONS: dict[str, type[BaseModel]] = {
    "api": ApiSettings,
    "global_settings": GlobalSettings,
    "logging": LoggingSettings,
    "monitoring": MonitoringSettings,
    "backtesting": BacktestingSettings,
    "replay": ReplaySettings,
    "supervisor": SupervisorSettings,
    "execution": ExecutionSettings,
    "control": ControlSettings,
}


class Config(BaseModel):
    """The whole validated configuration. Build it with :func:`load_config` or :func:`parse_config`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api: ApiSettings = Field(default_factory=ApiSettings)
    state_dir: str = "state"
    global_settings: GlobalSettings = Field(default_factory=GlobalSettings)
    pairs: dict[str, PairOverrides] = Field(default_factory=dict)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    backtesting: BacktestingSettings = Field(default_factory=BacktestingSettings)
    replay: ReplaySettings = Field(default_factory=ReplaySettings)
    supervisor: SupervisorSettings = Field(default_factory=SupervisorSettings)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    control: ControlSettings = Field(default_factory=ControlSettings)
    config_path: Path | None = None
    """The file this was loaded from; None for built-in defaults or :func:`parse_config`."""
    base_dir: Path = Field(default_factory=Path.cwd)
    """Relative paths (state_dir, replay.data, control.socket_path, logging.file) are resolved against this:
    the config file's project directory, or the working directory when running on the built-in defaults."""
    api_key_source: str | None = None
    """Where the API key came from, for display (never the key itself); None when unset."""
    api_secret_source: str | None = None

    def pair_settings(self) -> dict[str, PairSettings]:
        """Every listed pair, enabled or not, keyed by API symbol in YAML order."""
        resolved = (resolve_pair(key, o, self.global_settings) for key, o in self.pairs.items())
        return {p.symbol: p for p in resolved}

    def enabled_pairs(self) -> dict[str, PairSettings]:
        return {s: p for s, p in self.pair_settings().items() if p.enabled}

    def settings_for(self, symbol: str) -> PairSettings:
        """A listed pair's settings, or the global defaults for any other API symbol."""
        listed = self.pair_settings().get(symbol)
        if listed is not None:
            return listed
        return resolve_pair(symbol, PairOverrides(), self.global_settings, symbol=symbol)

    def state_path(self) -> Path:
        return self._resolve(self.state_dir)

    def control_socket_path(self) -> Path:
        if self.control.socket_path is None:
            return self.state_path() / "control.sock"
        return self._resolve(self.control.socket_path)

    def replay_data_paths(self) -> tuple[Path, ...]:
        """``replay.data`` files; a relative one that is not under ``base_dir`` is looked up among the
        bundled files (so the default replay works from any directory, installed or not)."""
        return tuple(self._resolve_data(p) for p in self.replay.data)

    def funding_rate_args(self) -> tuple[str, ...]:
        """``replay.funding_rates`` as ``[SYMBOL=]FILE`` arguments, relative files under ``base_dir``."""
        out = []
        for arg in self.replay.funding_rates:
            symbol, sep, file = arg.partition("=")
            out.append(f"{symbol}={self._resolve(file)}" if sep else str(self._resolve(arg)))
        return tuple(out)

    def exchange_info_paths(self) -> tuple[Path, ...]:
        """``backtesting.exchange_info`` files, relative ones under ``base_dir``."""
        return tuple(self._resolve(p) for p in self.backtesting.exchange_info)

    def log_file_path(self) -> Path | None:
        return None if self.logging.file is None else self._resolve(self.logging.file)

    def startup_errors(self, *, require_credentials: bool = True) -> tuple[str, ...]:
        """Why this config may not start trading; the runner must refuse to start if this is non-empty."""
        errors: list[str] = []
        if self.api.mode is Mode.LIVE and not self.api.live_trading_confirmed:
            errors.append(
                "api.live_trading_confirmed: must be true to trade real money in mode live, got false"
            )
        if require_credentials and self.api.mode in {Mode.LIVE, Mode.TESTNET}:
            errors.extend(
                f"api.{name}: is required in mode {self.api.mode} (set {env}, {env}_FILE or api.{name})"
                for name, env, value in (
                    ("binance_api_key", ENV_API_KEY, self.api.binance_api_key),
                    ("binance_api_secret", ENV_API_SECRET, self.api.binance_api_secret),
                )
                if value is None
            )
        from ..runtime.cpu_affinity import CpuPinning  # noqa: PLC0415 - a machine check, not a schema rule

        cpus = CpuPinning().check(self.supervisor.cpu_affinity)
        if cpus is not None:
            errors.append(cpus)
        return tuple(errors)

    def ensure_startable(self) -> None:
        """Raise :class:`ConfigError` if :meth:`startup_errors` finds anything."""
        errors = self.startup_errors()
        if errors:
            raise ConfigError(errors, source=str(self.config_path or "<defaults>"))

    def _resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def _resolve_data(self, path: str) -> Path:
        resolved = self._resolve(path)
        if resolved.exists() or Path(path).expanduser().is_absolute():
            return resolved
        return bundled_path(path) or resolved
