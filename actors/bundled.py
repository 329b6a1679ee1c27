"""The files nancemakina ships as package data: a month of real klines and the example config.

They sit beside ``actors/`` in the installed ``nancemakina`` package (in a checkout: the repository's own
``data/`` and ``config/``), so the defaults work from any working directory, editable install or not.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
"""The ``nancemakina`` package directory: the checkout's root, or ``site-packages/nancemakina``."""

DATA_DIR = PACKAGE_ROOT / "data"
EXAMPLE_CONFIG = PACKAGE_ROOT / "config" / "config.yaml.example"


def bundled_path(relative: str | Path) -> Path | None:
    """``relative`` (e.g. ``data/BTCUSDT_PERP_1m_….csv``) among the shipped files, or None if not shipped."""
    candidate = PACKAGE_ROOT / relative
    return candidate if candidate.is_file() else None
