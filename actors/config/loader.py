"""Loading the configuration: YAML → validated ``Config``, with every error collected and path-named.

Only this module and ``config`` see raw YAML. Each section is validated on its own so that one bad section
does not hide the errors of another; cross-field rules run afterwards on whatever validated.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from ..domain.model import ContractType
from .errors import join_path, render_value, suggest_key, translate_errors
from .pair_settings import GlobalSettings, PairOverrides, api_symbol_for_key, resolve_pair
from .schema import (
    _MAX_PRUNE_ROUNDS,
    _SECTIONS,
    ENV_API_KEY,
    ENV_API_SECRET,
    ApiSettings,
    BacktestingSettings,
    Config,
    ConfigError,
    Mode,
    SupervisorSettings,
)
from .v2_checks import check_btc_references, check_global_v2, check_pair_v2

if TYPE_CHECKING:
    from collections.abc import Mapping

_M = TypeVar("_M", bound=BaseModel)

# -- loading ---------------------------------------------------------------------------------------------

_TOP_LEVEL_KEYS = (*_SECTIONS, "pairs", "state_dir")
_PAIR_KEY = re.compile(r"[A-Z0-9_]+")
_PAIR_KEY_HINT = "invalid pair key (use upper-case like BTC_USDT, BTCUSDT or BTCUSD_PERP)"
_RISK_PATH = "global_settings.risk_management"
_ALIASES: dict[str, dict[str, str]] = {
    # Spellings from the original prototype's guide and example, kept so old configs still load.
    _RISK_PATH: {"max_account_risk_per_trade_pct": "dynamic_sizing_risk_percent"},
    "logging": {"log_file": "file"},
    "pairs.*": {"risk_percent_per_trade": "dynamic_sizing_risk_percent"},
}


@dataclass(slots=True)
class _Loader:
    """Accumulates errors, and the paths users actually wrote when they used an alias."""

    errors: list[str]
    renames: dict[str, str]
    failed: set[str]

    def unalias(self, raw: object, path: str, spec: str) -> object:
        if not isinstance(raw, dict):
            return raw
        out = dict(raw)
        for alias, canonical in _ALIASES[spec].items():
            if alias not in out:
                continue
            value = out.pop(alias)
            if canonical not in out:
                out[canonical] = value
                self.renames[f"{path}.{canonical}"] = f"{path}.{alias}"
            elif out[canonical] != value:
                self.errors.append(
                    f"{path}.{alias}: conflicts with {canonical} ({render_value(out[canonical])}); "
                    f"give only one, got {render_value(value)}"
                )
        return out

    def validate(self, model: type[_M], raw: object, path: str, extra: tuple[str, ...] = ()) -> _M | None:
        """Validate one section; on errors, record them and return a best-effort model built without
        the offending keys, so cross-field rules can still check the rest (see :meth:`bad`)."""
        candidate = {} if raw is None else copy.deepcopy(raw)
        extra_keys = {path: extra, _RISK_PATH: tuple(_ALIASES[_RISK_PATH])}
        for _ in range(_MAX_PRUNE_ROUNDS):
            try:
                return model.model_validate(candidate)
            except ValidationError as exc:
                if not self._prune_round(exc, model, path, extra_keys, candidate):
                    return None
        return None

    def _prune_round(
        self,
        exc: ValidationError,
        model: type[BaseModel],
        path: str,
        extra_keys: dict[str, tuple[str, ...]],
        candidate: object,
    ) -> bool:
        self.errors.extend(translate_errors(exc, model, path, extra_keys))
        pruned = False
        for error in exc.errors():
            self.failed.add(join_path(path, error["loc"]))
            pruned = _prune(candidate, error["loc"]) or pruned
        return pruned

    def bad(self, *paths: str) -> bool:
        """True if any of these paths (or something inside them) failed validation."""
        return any(f == p or f.startswith((f"{p}.", f"{p}[")) for f in self.failed for p in paths)

    def final_errors(self) -> list[str]:
        fixed = []
        for error in self.errors:
            for canonical, written in self.renames.items():
                if error.startswith((f"{canonical}:", f"{canonical}.", f"{canonical}[")):
                    error = written + error[len(canonical) :]  # noqa: PLW2901 - rewrite in place
                    break
            fixed.append(error)
        return fixed


def parse_config(
    data: object,
    *,
    source: str = "<config>",
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Validate already-parsed YAML. Raises :class:`ConfigError` listing every problem found."""
    env = os.environ if env is None else env
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [f"(top level): must be a mapping of section names to settings, got {render_value(data)}"],
            source=source,
        )
    loader = _Loader(errors=[], renames={}, failed=set())
    sections: dict[str, Any] = {}
    for key, value in data.items():
        raw = value
        if key == "pairs":
            sections["pairs"] = _parse_pairs(loader, raw)
        elif key == "state_dir":
            if isinstance(raw, str) and raw.strip():
                sections["state_dir"] = raw
            else:
                loader.errors.append(f"state_dir: must be a non-empty string, got {render_value(raw)}")
        elif key in _SECTIONS:
            if key == "global_settings" and isinstance(raw, dict) and "risk_management" in raw:
                raw = {
                    **raw,
                    "risk_management": loader.unalias(raw["risk_management"], _RISK_PATH, _RISK_PATH),
                }
            elif key == "logging":
                raw = loader.unalias(raw, "logging", "logging")
            section = loader.validate(_SECTIONS[key], raw, key)
            sections[key] = section if section is not None else _FAILED
        else:
            loader.errors.append(f"{key}: unknown key{suggest_key(str(key), _TOP_LEVEL_KEYS)}")

    api = sections.get("api", ApiSettings())
    if api is not _FAILED:
        sections["api"] = _apply_testnet(loader, api, has_mode="mode" in (data.get("api") or {}))
    sources = _apply_secrets(loader, sections, env)
    _cross_check(loader, sections)
    errors = loader.final_errors()
    if errors:
        raise ConfigError(errors, source=source)
    return Config.model_validate({**sections, **sources, "base_dir": base_dir or Path.cwd()})


def load_config(path: str | Path | None = None, *, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a YAML config file; ``None`` gives the built-in defaults (secrets still from env)."""
    if path is None:
        return parse_config({}, source="<defaults>", env=env)
    file = Path(path).expanduser().resolve()
    source = str(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read config file: {exc.strerror or exc}"], source=source) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_error(exc)], source=source) from None
    base_dir = file.parent.parent if file.parent.name == "config" else file.parent
    config = parse_config(data, source=source, base_dir=base_dir, env=env)
    return config.model_copy(update={"config_path": file})


class _Failed:
    """Marks a section that failed validation, so cross-field rules that need it are skipped."""


_FAILED: Any = _Failed()


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, which plain YAML silently resolves to the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _prune(data: object, loc: tuple[int | str, ...]) -> bool:
    """Delete the deepest mapping key on ``loc`` (a list is dropped whole); False if nothing to delete."""
    parent: object = None
    key: int | str | None = None
    current = data
    for part in loc:
        if not isinstance(current, dict) or part not in current:
            break
        parent, key, current = current, part, current[part]
    if isinstance(parent, dict) and key is not None:
        del parent[key]
        return True
    return False


def _yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}invalid YAML: {problem}"


def _parse_pairs(loader: _Loader, raw: object) -> dict[str, PairOverrides]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        loader.errors.append(
            f"pairs: must be a mapping of pair key (like BTC_USDT) to settings, got {render_value(raw)}"
        )
        return {}
    pairs: dict[str, PairOverrides] = {}
    symbols: dict[str, str] = {}
    for key, settings in raw.items():
        symbol = _symbol_or_none(key)
        if symbol is None:
            loader.errors.append(f"pairs: {_PAIR_KEY_HINT}, got {render_value(key)}")
            continue
        if symbol in symbols:
            loader.errors.append(f"pairs.{key}: is the same API symbol ({symbol}) as pairs.{symbols[symbol]}")
            continue
        symbols[symbol] = key
        path = f"pairs.{key}"
        extra = tuple(_ALIASES["pairs.*"])
        overrides = loader.validate(PairOverrides, loader.unalias(settings, path, "pairs.*"), path, extra)
        if overrides is not None:
            pairs[key] = overrides
    return pairs


def _symbol_or_none(key: object) -> str | None:
    if not isinstance(key, str) or not _PAIR_KEY.fullmatch(key):
        return None
    try:
        return api_symbol_for_key(key)
    except ValueError:
        return None


def _apply_testnet(loader: _Loader, api: ApiSettings, *, has_mode: bool) -> ApiSettings:
    if not api.testnet:
        return api
    if not has_mode:
        return api.model_copy(update={"mode": Mode.TESTNET})
    if api.mode is not Mode.TESTNET and not loader.bad("api.mode"):
        loader.errors.append(
            f"api.testnet: conflicts with api.mode ({api.mode}); "
            "remove testnet or set mode: testnet, got true"
        )
    return api


def _apply_secrets(
    loader: _Loader, sections: dict[str, Any], env: Mapping[str, str]
) -> dict[str, str | None]:
    found = sections.get("api", ApiSettings())
    api: ApiSettings | None = found if isinstance(found, ApiSettings) else None
    yaml_key = api.binance_api_key if api else None
    yaml_secret = api.binance_api_secret if api else None
    key, key_source = _secret(loader, env, ENV_API_KEY, "nancemakina_api_key", yaml_key)
    secret, secret_source = _secret(loader, env, ENV_API_SECRET, "nancemakina_api_secret", yaml_secret)
    if api is not None:
        sections["api"] = api.model_copy(update={"binance_api_key": key, "binance_api_secret": secret})
    return {"api_key_source": key_source, "api_secret_source": secret_source}


def _secret(
    loader: _Loader, env: Mapping[str, str], var: str, credential: str, from_yaml: SecretStr | None
) -> tuple[SecretStr | None, str | None]:
    """Precedence: env value, then a file named by ``<var>_FILE``, then systemd credentials, then YAML."""
    if env.get(var, "").strip():
        return SecretStr(env[var].strip()), f"env {var}"
    candidates: list[tuple[str, Path]] = []
    if env.get(f"{var}_FILE"):
        candidates.append((f"{var}_FILE", Path(env[f"{var}_FILE"])))
    elif env.get("CREDENTIALS_DIRECTORY"):
        path = Path(env["CREDENTIALS_DIRECTORY"]) / credential
        if path.exists():
            candidates.append(("CREDENTIALS_DIRECTORY", path))
    for via, path in candidates:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            loader.errors.append(f"{via}: cannot read secret file {path}: {reason}")
            return None, None
        if not text:
            loader.errors.append(f"{via}: secret file {path} is empty")
            return None, None
        return SecretStr(text), f"file {path} via {via}"
    if from_yaml is not None and from_yaml.get_secret_value():
        return from_yaml, "config file"
    return None, None


def _cross_check(loader: _Loader, sections: dict[str, Any]) -> None:
    """Rules spanning fields. A rule is skipped when a field it reads failed validation, so the user
    sees the field's own error rather than a second one computed from a default."""
    errs, bad = loader.errors, loader.bad
    gs = sections.get("global_settings", GlobalSettings())
    if isinstance(gs, GlobalSettings):
        v1 = gs.v1_strategy
        base = _V1_PATH
        if v1.sma_short_period >= v1.sma_long_period and not bad(*_g_paths(_SMA)):
            errs.append(
                f"{base}.sma_short_period: must be less than sma_long_period ({v1.sma_long_period}), "
                f"got {v1.sma_short_period}"
            )
        if v1.signal_timeframe not in v1.indicator_timeframes and not bad(*_g_paths(_TF)):
            errs.append(
                f"{base}.signal_timeframe: must be one of indicator_timeframes "
                f"({', '.join(v1.indicator_timeframes)}), got {v1.signal_timeframe!r}"
            )
        check_global_v2(errs, bad, gs)
        for key, overrides in sections.get("pairs", {}).items():
            _check_pair(loader, key, overrides, gs)
            check_pair_v2(errs, bad, key, overrides, gs)
        check_btc_references(errs, sections.get("pairs", {}), gs)
    sup = sections.get("supervisor")
    if isinstance(sup, SupervisorSettings) and sup.backoff_max_s < sup.backoff_initial_s:
        errs.append(
            f"supervisor.backoff_max_s: must be at least backoff_initial_s ({_g(sup.backoff_initial_s)}), "
            f"got {_g(sup.backoff_max_s)}"
        )
    bt = sections.get("backtesting")
    if isinstance(bt, BacktestingSettings) and bt.dates_inverted():
        errs.append(f"backtesting.end_date: must be after start_date ({bt.start_date}), got {bt.end_date!r}")


_V1_PATH = "global_settings.v1_strategy"
_SMA = ("sma_short_period", "sma_long_period")
_TF = ("signal_timeframe", "indicator_timeframes")


def _g_paths(names: tuple[str, ...]) -> list[str]:
    return [f"{_V1_PATH}.{n}" for n in names]


def _g(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


def _check_pair(loader: _Loader, key: str, o: PairOverrides, gs: GlobalSettings) -> None:
    errs = loader.errors
    p = resolve_pair(key, o, gs)
    path = f"pairs.{key}"

    def bad(*names: str, global_names: tuple[str, ...] = ()) -> bool:
        return loader.bad(*(f"{path}.{n}" for n in names), *global_names)

    coin_m = p.contract_type is ContractType.COIN_M
    if o.contract_type is not None and o.contract_type is not p.contract_type:
        errs.append(
            f"{path}.contract_type: does not match the pair key ({key} is a {p.contract_type} pair), "
            f"got {str(o.contract_type)!r}"
        )
    if not coin_m:
        errs.extend(
            f"{path}.{name}: only applies to COIN_M pairs, got {_g(float(value))}"
            for name, value in (("contract_size", o.contract_size), ("margin_coin", o.margin_coin))
            if value is not None
        )
    elif o.margin_usdt is not None:
        errs.append(
            f"{path}.margin_usdt: only applies to USDT_M pairs (use margin_coin), got {_g(o.margin_usdt)}"
        )
    if p.sma_short_period >= p.sma_long_period and not bad(*_SMA, global_names=tuple(_g_paths(_SMA))):
        if o.sma_short_period is not None:
            errs.append(
                f"{path}.sma_short_period: must be less than sma_long_period ({p.sma_long_period}), "
                f"got {p.sma_short_period}"
            )
        elif o.sma_long_period is not None:
            errs.append(
                f"{path}.sma_long_period: must be greater than sma_short_period ({p.sma_short_period}), "
                f"got {p.sma_long_period}"
            )
    if p.signal_timeframe not in p.indicator_timeframes and not bad(*_TF, global_names=tuple(_g_paths(_TF))):
        if o.signal_timeframe is not None:
            errs.append(
                f"{path}.signal_timeframe: must be one of indicator_timeframes "
                f"({', '.join(p.indicator_timeframes)}), got {p.signal_timeframe!r}"
            )
        elif o.indicator_timeframes is not None:
            errs.append(
                f"{path}.indicator_timeframes: must include signal_timeframe ({p.signal_timeframe}), "
                f"got {render_value(p.indicator_timeframes)}"
            )
    needs_coin = coin_m and p.enabled and p.margin_coin is None and not p.dynamic_sizing_enabled
    coin_inputs = ("margin_coin", "enabled", "dynamic_sizing_enabled")
    global_coin = (f"{_V1_PATH}.default_margin_coin", f"{_RISK_PATH}.dynamic_sizing_enabled")
    if needs_coin and not bad(*coin_inputs, global_names=global_coin):
        errs.append(
            f"{path}.margin_coin: is required for an enabled COIN_M pair (or set "
            "global_settings.v1_strategy.default_margin_coin, or enable dynamic sizing)"
        )
