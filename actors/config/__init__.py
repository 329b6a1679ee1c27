"""Configuration: a typed tree (``schema``, ``pair_settings``, ``field_types``) read from YAML (``loader``),
explained (``errors``, ``check``).

Only ``loader`` sees raw YAML; everything else receives typed settings, each actor only its own slice.
"""

from .check import describe_pair
from .field_types import iso_to_ms
from .loader import load_config, parse_config
from .pair_settings import PairSettings, api_symbol_for_key, base_coin, contract_type_for_symbol
from .schema import (
    ENV_API_KEY,
    ENV_API_SECRET,
    ApiSettings,
    BacktestingSettings,
    Config,
    ConfigError,
    ControlSettings,
    ExecutionSettings,
    LoggingSettings,
    Mode,
    MonitoringSettings,
    ReplaySettings,
    StartupError,
    SupervisorSettings,
)

__all__ = [
    "ENV_API_KEY",
    "ENV_API_SECRET",
    "ApiSettings",
    "BacktestingSettings",
    "Config",
    "ConfigError",
    "ControlSettings",
    "ExecutionSettings",
    "LoggingSettings",
    "Mode",
    "MonitoringSettings",
    "PairSettings",
    "ReplaySettings",
    "StartupError",
    "SupervisorSettings",
    "api_symbol_for_key",
    "base_coin",
    "contract_type_for_symbol",
    "describe_pair",
    "iso_to_ms",
    "load_config",
    "parse_config",
]
