"""equity.png: the equity curve and its drawdown, titled with what ran and what it made, trades marked.

Needs matplotlib (the optional ``plot`` extra); ``report_files`` checks for it before calling here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

    import numpy.typing as npt

    from .results import OpenPosition, Trade

MAX_POINTS = 20_000
"""Points drawn per curve: a year of 1m closes is thinned by stride (the headline numbers use every point)."""
_EXIT_STYLE = {"take_profit": ("o", "tab:green"), "stop_loss": ("x", "tab:red")}


def plot_equity(
    path: Path,
    *,
    title: str,
    currency: str,
    times: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    trades: list[Trade],
    still_open: list[OpenPosition],
) -> None:
    """Equity (``currency``) above, drawdown in % below; entries ▲ LONG / ▼ SHORT, exits by reason."""
    import matplotlib as mpl  # noqa: PLC0415 - importing pyplot costs ~0.3 s; only reports need it

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    stride = max(1, len(times) // MAX_POINTS)
    when = [datetime.fromtimestamp(t / 1000, tz=UTC) for t in times[::stride].tolist()]
    shown = values[::stride]
    peaks = np.maximum.accumulate(values)
    drawdown = np.where(peaks > 0, -(peaks - values) / np.where(peaks > 0, peaks, 1.0) * 100.0, 0.0)
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(11, 6.5), height_ratios=(3, 1))
    top.step(when, shown, where="post", color="tab:blue", linewidth=0.9, label=f"equity ({currency})")

    def at(t_ms: list[int]) -> tuple[list[datetime], npt.NDArray[np.float64]]:
        idx = np.clip(np.searchsorted(times, np.asarray(t_ms, dtype=np.int64), side="right") - 1, 0, None)
        return [datetime.fromtimestamp(t / 1000, tz=UTC) for t in t_ms], values[idx] if len(
            values
        ) else values

    entries = [(t.entry_time_ms, t.direction.value) for t in trades]
    entries += [(p.entry_time_ms, p.direction.value) for p in still_open]
    for side, marker, colour in (("LONG", "^", "tab:green"), ("SHORT", "v", "tab:red")):
        xs, ys = at([t for t, s in entries if s == side])
        top.scatter(xs, ys, marker=marker, s=18, color=colour, alpha=0.7, label=f"entry {side}", zorder=3)
    for reason in sorted({str(t.exit_reason) for t in trades}):
        marker, colour = _EXIT_STYLE.get(reason, ("s", "tab:gray"))
        xs, ys = at([t.exit_time_ms for t in trades if str(t.exit_reason) == reason])
        top.scatter(xs, ys, marker=marker, s=16, color=colour, alpha=0.7, label=f"exit {reason}", zorder=3)
    top.set_ylabel(f"equity ({currency})")
    top.set_title(title, fontsize=10)
    top.grid(alpha=0.3)
    top.legend(loc="best", fontsize=7, ncols=3)
    bottom.fill_between(when, drawdown[::stride], 0, step="post", color="tab:red", alpha=0.4)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
