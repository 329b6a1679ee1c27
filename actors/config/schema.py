"""The typed configuration tree: one pydantic model per YAML section, and each pair's effective settings.

The schema never sees raw YAML (``loader`` does); a problem becomes one ``<yaml.path>: <message>, got
<value>`` line in a single :class:`ConfigError` (``errors`` renders them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, TypeVar, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

from ..bundled import bundled_path
from ..domain.model import TIMEFRAME_MS, ContractType

_T = TypeVar("_T")
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


class Mode(StrEnum):
    """Where orders go: recorded data, simulated fills on live data, the testnet, or real money."""

    REPLAY = "replay"
    PAPER = "paper"
    TESTNET = "testnet"
    LIVE = "live"


def _case_insensitive(*choices: str) -> BeforeValidator:
    """Accept any spelling case of ``choices``; anything else passes through untouched so the error
    message shows exactly what the user wrote."""
    by_fold = {c.casefold(): c for c in choices}

    def normalise(value: object) -> object:
        return by_fold.get(value.casefold(), value) if isinstance(value, str) else value

    return BeforeValidator(normalise)


def _upper_coin(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _margin_mode(value: object) -> object:
    # Binance's API spells it CROSSED but its UI says "Cross"; accept both.
    if isinstance(value, str) and value.upper() in {"ISOLATED", "CROSSED", "CROSS"}:
        return "CROSSED" if value.upper() == "CROSS" else value.upper()
    return value


def _timeframe(value: str) -> str:
    if value not in TIMEFRAME_MS:
        raise ValueError(f"unknown timeframe (valid: {', '.join(TIMEFRAME_MS)})")
    return value


def _no_duplicates(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("must list at least one timeframe")
    dupes = sorted({tf for tf in value if value.count(tf) > 1})
    if dupes:
        raise ValueError(f"lists {', '.join(dupes)} more than once")
    return value


def _iso_text(value: object) -> object:
    # Unquoted YAML dates arrive as date/datetime objects; keep the user's ISO text form either way.
    return value.isoformat() if isinstance(value, date) else value


def _iso_checked(value: str | None) -> str | None:
    if value is not None:
        iso_to_ms(value)
    return value


def iso_to_ms(text: str) -> int:
    """ISO-8601 text to Unix ms; a time without an offset is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("must be an ISO-8601 date/time like 2025-05-25T00:00:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _loopback_url(value: str | None) -> str | None:
    if value is None:
        return None
    m = re.fullmatch(r"http://(127\.0\.0\.1|localhost|\[::1\]):(\d{1,5})/?", value)
    if m is None:
        raise ValueError("must be http://127.0.0.1:PORT (the local exchange only listens on loopback)")
    return value.rstrip("/")


def _speed(value: object) -> float | str:
    if isinstance(value, str) and value.strip().lower() == "max":
        return "max"
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise ValueError("must be a positive number or 'max'")


# Bounds live in these aliases so the global value and its per-pair override cannot drift apart.
Leverage = Annotated[int, Field(ge=1, le=125)]
Period = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
NonNeg = Annotated[float, Field(ge=0)]
Percent = Annotated[float, Field(gt=0, le=100)]
BbPeriod = Annotated[int, Field(ge=2)]
Port = Annotated[int, Field(ge=0, le=65535)]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _cpu_set(value: tuple[int, ...]) -> tuple[int, ...]:
    if not value:
        raise ValueError("list at least one CPU, or leave it unset (null) to use every CPU")
    if len(set(value)) != len(value):
        raise ValueError("a CPU is listed twice")
    return tuple(sorted(value))


CpuSet = Annotated[tuple[Annotated[int, Field(ge=0, le=4095)], ...], AfterValidator(_cpu_set)]

MarginMode = Annotated[Literal["ISOLATED", "CROSSED"], BeforeValidator(_margin_mode)]
Timeframe = Annotated[str, AfterValidator(_timeframe)]
Timeframes = Annotated[tuple[Timeframe, ...], AfterValidator(_no_duplicates)]
IsoTime = Annotated[str | None, BeforeValidator(_iso_text), AfterValidator(_iso_checked)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiSettings(_Section):
    mode: Annotated[Mode, _case_insensitive(*Mode)] = Mode.REPLAY
    binance_api_key: SecretStr | None = None
    binance_api_secret: SecretStr | None = None
    testnet: bool = False
    live_trading_confirmed: bool = False
    recv_window_ms: int = Field(default=5000, ge=1, le=60000)
    request_timeout_s: Positive = 10.0


class V1Strategy(_Section):
    sma_short_period: Period = 21
    sma_long_period: Period = 200
    min_signal_interval_minutes: NonNegInt = 15
    tp_sl_ratio: Positive = 3.0
    default_margin_usdt: Positive = 50.0
    default_margin_coin: Positive | None = None
    default_leverage: Leverage = 10
    margin_mode: MarginMode = "ISOLATED"
    indicator_timeframes: Timeframes = ("1m", "5m", "15m", "1h", "4h")
    signal_timeframe: Timeframe = "1m"
    buffer_time_candles: NonNegInt = 0
    pivot_lookback_candles: Period = 30


class RiskManagement(_Section):
    dynamic_sizing_enabled: bool = False
    dynamic_sizing_risk_percent: Percent = 1.0
    max_concurrent_trades: Period | None = None


class Filters(_Section):
    volume_filter_enabled: bool = False
    volume_avg_period: Period = 20
    volume_threshold_ratio: Positive = 1.5
    volatility_filter_enabled: bool = False
    bb_period: BbPeriod = 20
    bb_std_dev: Positive = 2.0
    bb_min_width_percentage: NonNeg = 0.5


class GlobalSettings(_Section):
    v1_strategy: V1Strategy = Field(default_factory=V1Strategy)
    risk_management: RiskManagement = Field(default_factory=RiskManagement)
    filters: Filters = Field(default_factory=Filters)


class PairOverrides(_Section):
    """One ``pairs.<KEY>`` entry as written: every field but ``enabled`` falls back to the global value."""

    enabled: bool = True
    contract_type: Annotated[ContractType | None, _case_insensitive(*ContractType)] = None
    leverage: Leverage | None = None
    margin_usdt: Positive | None = None
    margin_coin: Positive | None = None
    contract_size: Period | None = None
    margin_mode: MarginMode | None = None
    indicator_timeframes: Timeframes | None = None
    signal_timeframe: Timeframe | None = None
    min_signal_interval_minutes: NonNegInt | None = None
    tp_sl_ratio: Positive | None = None
    sma_short_period: Period | None = None
    sma_long_period: Period | None = None
    dynamic_sizing_enabled: bool | None = None
    dynamic_sizing_risk_percent: Percent | None = None
    buffer_time_candles: NonNegInt | None = None
    pivot_lookback_candles: Period | None = None
    volume_filter_enabled: bool | None = None
    volume_avg_period: Period | None = None
    volume_threshold_ratio: Positive | None = None
    volatility_filter_enabled: bool | None = None
    bb_period: BbPeriod | None = None
    bb_std_dev: Positive | None = None
    bb_min_width_percentage: NonNeg | None = None


class LoggingSettings(_Section):
    level: Annotated[LogLevel, _case_insensitive(*get_args(LogLevel))] = "INFO"
    file: str | None = None
    rotation_size_mb: Positive = 10.0
    rotation_backup_count: NonNegInt = 5
    # ``json`` would shadow BaseModel.json(); the YAML key stays ``json``.
    json_format: bool = Field(default=False, alias="json")


class MonitoringSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    prometheus_port: Port = 8000


class BacktestingSettings(_Section):
    start_date: IsoTime = None
    end_date: IsoTime = None
    initial_balance_usdt: Positive = 10_000.0
    initial_balance_coin: dict[Annotated[str, BeforeValidator(_upper_coin)], Positive] = Field(
        default_factory=dict
    )
    slippage_percent: NonNeg = 0.01
    fee_percent: NonNeg = 0.04

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


class ReplaySettings(_Section):
    data: tuple[str, ...] = (
        "data/BTCUSDT_PERP_1m_2025-05-25_2025-06-24.csv",
        "data/ETHUSDT_PERP_1m_2025-05-25_2025-06-24.csv",
    )
    speed: Annotated[float | Literal["max"], BeforeValidator(_speed)] = "max"
    exit_at_end: bool = True
    start: IsoTime = None
    port: Port = 0
    exchange_url: Annotated[str | None, AfterValidator(_loopback_url)] = None
    """Use an already-running local exchange (``nancemakina exchange``) at this loopback URL instead of
    starting one in-process; ``data``, ``speed``, ``start`` and ``port`` are then that exchange's."""

    @property
    def start_ms(self) -> int | None:
        return None if self.start is None else iso_to_ms(self.start)


class SupervisorSettings(_Section):
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
    so the order goes out first (``actors/priority.py``), for at most this long after the entry was told;
    0 turns the pause off."""
    candle_handoff_ms: float = Field(default=1.0, ge=0.0, le=100.0)
    """After telling a pair a streamed closed candle, the market-data reader waits for that pair to finish
    it, for at most this long, so candles are decided in arrival order instead of in whatever order 250
    woken threads win the GIL (``CandleTurn`` in ``actors/priority.py``); 0 turns the wait off."""
    cpu_affinity: CpuSet | None = None
    """CPUs every thread of the process runs on (``actors/affinity.py``); None leaves them wherever systemd
    or the shell started the process. One CPU halved the signal → order p99 in ``bench/live_latency.py``:
    the GIL hands over between threads sharing one run queue instead of waking them on a busy core."""


class ExecutionSettings(_Section):
    stop_placement_retries: NonNegInt = 3
    reconcile_interval_s: Positive = 30.0
    on_unprotected_position: Literal["repair", "flatten"] = "repair"
    on_unknown_position: Literal["adopt", "flatten"] = "adopt"
    order_timeout_s: Positive = 10.0


class ControlSettings(_Section):
    socket_path: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PairSettings:
    """Effective settings of one pair: its overrides laid over the globals. Hashable, so reloads can diff."""

    key: str
    symbol: str
    enabled: bool
    contract_type: ContractType
    leverage: int
    margin_mode: str
    margin_usdt: float
    margin_coin: float | None
    contract_size: int | None
    """Contract face value in USD (COIN-M only)."""
    dynamic_sizing_enabled: bool
    risk_percent: float
    max_concurrent_trades: int | None
    sma_short_period: int
    sma_long_period: int
    min_signal_interval_minutes: int
    tp_sl_ratio: float
    indicator_timeframes: tuple[str, ...]
    signal_timeframe: str
    buffer_time_candles: int
    pivot_lookback_candles: int
    volume_filter_enabled: bool
    volume_avg_period: int
    volume_threshold_ratio: float
    volatility_filter_enabled: bool
    bb_period: int
    bb_std_dev: float
    bb_min_width_percentage: float


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
        from ..ops.cpu_affinity import CpuPinning  # noqa: PLC0415 - a machine check, not a schema rule

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


def api_symbol_for_key(key: str) -> str:
    """``BTC_USDT`` → ``BTCUSDT``; ``BTCUSD_PERP`` and ``BTCUSDT`` stay as they are."""
    if key.endswith("_PERP") and re.fullmatch(r"[A-Z0-9]+_PERP", key):
        return key
    match = re.fullmatch(r"([A-Z0-9]+)_([A-Z0-9]+)", key) or re.fullmatch(r"[A-Z0-9]+", key)
    if match is None:
        raise ValueError(f"invalid pair key {key!r}: use upper-case like BTC_USDT, BTCUSDT or BTCUSD_PERP")
    return key.replace("_", "")


def contract_type_for_symbol(symbol: str) -> ContractType:
    """COIN-M symbols carry an underscore suffix (``BTCUSD_PERP``, ``BTCUSD_250627``); USDⓈ-M ones don't."""
    return ContractType.COIN_M if symbol.endswith("_PERP") or "_" in symbol else ContractType.USDT_M


def base_coin(symbol: str) -> str:
    """Margin coin of a COIN-M symbol: ``BTCUSD_PERP`` → ``BTC``."""
    return symbol.split("_", 1)[0].removesuffix("USD")


def _key_contract_type(key: str) -> ContractType:
    return ContractType.COIN_M if key.endswith("_PERP") else ContractType.USDT_M


def _pick(override: _T | None, default: _T) -> _T:
    return default if override is None else override


def resolve_pair(
    key: str, o: PairOverrides, gs: GlobalSettings, *, symbol: str | None = None
) -> PairSettings:
    """Lay one pair's overrides over the globals. ``symbol`` skips the key mapping (unlisted symbols)."""
    v1, risk, flt = gs.v1_strategy, gs.risk_management, gs.filters
    symbol = symbol or api_symbol_for_key(key)
    ctype = contract_type_for_symbol(symbol) if key == symbol else _key_contract_type(key)
    coin_m = ctype is ContractType.COIN_M
    return PairSettings(
        key=key,
        symbol=symbol,
        enabled=o.enabled,
        contract_type=ctype,
        leverage=_pick(o.leverage, v1.default_leverage),
        margin_mode=_pick(o.margin_mode, v1.margin_mode),
        margin_usdt=_pick(o.margin_usdt, v1.default_margin_usdt),
        margin_coin=_pick(o.margin_coin, v1.default_margin_coin) if coin_m else None,
        contract_size=_pick(o.contract_size, 100 if symbol.startswith("BTCUSD") else 10) if coin_m else None,
        dynamic_sizing_enabled=_pick(o.dynamic_sizing_enabled, risk.dynamic_sizing_enabled),
        risk_percent=_pick(o.dynamic_sizing_risk_percent, risk.dynamic_sizing_risk_percent),
        max_concurrent_trades=risk.max_concurrent_trades,
        sma_short_period=_pick(o.sma_short_period, v1.sma_short_period),
        sma_long_period=_pick(o.sma_long_period, v1.sma_long_period),
        min_signal_interval_minutes=_pick(o.min_signal_interval_minutes, v1.min_signal_interval_minutes),
        tp_sl_ratio=_pick(o.tp_sl_ratio, v1.tp_sl_ratio),
        indicator_timeframes=_pick(o.indicator_timeframes, v1.indicator_timeframes),
        signal_timeframe=_pick(o.signal_timeframe, v1.signal_timeframe),
        buffer_time_candles=_pick(o.buffer_time_candles, v1.buffer_time_candles),
        pivot_lookback_candles=_pick(o.pivot_lookback_candles, v1.pivot_lookback_candles),
        volume_filter_enabled=_pick(o.volume_filter_enabled, flt.volume_filter_enabled),
        volume_avg_period=_pick(o.volume_avg_period, flt.volume_avg_period),
        volume_threshold_ratio=_pick(o.volume_threshold_ratio, flt.volume_threshold_ratio),
        volatility_filter_enabled=_pick(o.volatility_filter_enabled, flt.volatility_filter_enabled),
        bb_period=_pick(o.bb_period, flt.bb_period),
        bb_std_dev=_pick(o.bb_std_dev, flt.bb_std_dev),
        bb_min_width_percentage=_pick(o.bb_min_width_percentage, flt.bb_min_width_percentage),
    )
