"""Which pairs a configuration trades: the enabled ones, or — a bare replay — every replayed symbol."""

from __future__ import annotations

from ..backtest.kline_files import parse_data_arg
from .pair_settings import PairSettings
from .schema import Config, Mode


def trading_pairs(config: Config) -> dict[str, PairSettings]:
    """The enabled pairs; in replay with no pair configured, every replayed symbol on the global settings.

    So the bare ``nancemakina run`` (no config file) trades the bundled data, as the README promises.
    """
    pairs = config.enabled_pairs()
    if pairs or config.api.mode is not Mode.REPLAY or config.replay.exchange_url is not None:
        return pairs
    symbols = [parse_data_arg(str(p))[0] for p in config.replay_data_paths()]
    return {s: config.settings_for(s) for s in symbols}
