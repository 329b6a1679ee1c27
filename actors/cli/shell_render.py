"""How the shell shows the daemon's answers: aligned tables, the indented actor tree, ``inspect``'s report.

Pure functions from a command's JSON result to text; nothing here talks to the daemon.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

ACTOR_COLUMNS = ("kind", "state", "mailbox", "msgs_per_s", "messages", "restarts", "uptime_s")
"""The per-actor columns of ``ls`` and ``top``, after the actor's name."""
_UNDER = {"": "", "├─ ": "│  ", "└─ ": "   "}
"""Indent below a tree row, by the branch glyph that row was drawn with."""
_LS_HEADERS = {
    "msgs_per_s": "MSG/S",
    "uptime_s": "UPTIME",
    "last_message_age_s": "IDLE",
    "cpu_s": "CPU S",
    "wait_s": "WAIT S",
    "wait_per_wakeup_us": "µS WAIT/WAKE",
}
_SECONDS_PLAIN = frozenset({"cpu_s", "wait_s", "wait_per_wakeup_us"})
CLOCK_NOTE = "times: UTC, on the exchange's clock (in a replay, its simulated clock)"
"""Printed under every answer that shows times: the ledger keeps them all on the exchange's clock."""
"""``threads`` columns shown as plain numbers (sub-second CPU totals), not as ``1m02s`` durations."""


def render(cmd: str, result: Any) -> str:
    """Human text for a command's result."""
    if cmd == "ls":
        return render_actor_tree(result)
    if cmd == "inspect":
        return render_inspect(result)
    if cmd in {"positions", "orders", "decisions"}:
        table = render_table(result, empty=f"(no {cmd})")
        return table + (f"{CLOCK_NOTE}\n" if result else "")
    if cmd == "help":
        lines = []
        for c in result:
            lines.append(f"  {c['usage']:<36} {c['summary']}")
            lines.extend(f"  {'':<36}   {detail}" for detail in c.get("details") or ())
        lines.append(f"  {'exit | quit | Ctrl-D':<36} leave the shell")
        lines.append("  nancemakina shell --json -c CMD prints any answer as JSON (times in Unix ms)")
        return "\n".join(lines) + "\n"
    if cmd == "health":
        checks = result.get("checks") or {}
        return f"status: {result.get('status')}\n" + "".join(
            f"  {k}: {_cell(v)}\n" for k, v in checks.items()
        )
    if cmd == "threads":
        cpus = result.get("cpu_affinity")
        where = ", ".join(map(str, cpus)) if cpus else "unset (every CPU)"
        head = (
            f"cpu_affinity: {where}{' (auto)' if result.get('cpu_affinity_auto') else ''}   "
            f"GIL switch interval: {_cell(result.get('gil_switch_interval_ms'))} ms\n"
            "totals since each thread started; WAIT = runnable but waiting for a CPU\n"
        )
        columns = ("kind", "threads", "cpu_s", "wait_s", "wakeups", "wait_per_wakeup_us", "cpus")
        return head + render_table(result.get("kinds") or [], columns, only=True)
    if isinstance(result, dict):
        return "".join(f"{k}: {_cell(v)}\n" for k, v in result.items())
    return f"{_cell(result)}\n"


def render_actor_tree(rows: list[dict[str, Any]]) -> str:
    """The actor table with names indented under their parents (supervisor → pairs → children)."""
    names = {r.get("name") for r in rows}
    children: dict[object, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        children[row.get("parent") if row.get("parent") in names else None].append(row)
    ordered: list[dict[str, Any]] = []
    seen: set[object] = set()

    def walk(row: dict[str, Any], indent: str, branch: str) -> None:
        if row.get("name") in seen:
            return
        seen.add(row.get("name"))
        ordered.append({**row, "actor": f"{indent}{branch}{row.get('name')}"})
        kids = children.get(row.get("name"), [])
        below = indent + _UNDER[branch]
        for i, kid in enumerate(kids):
            walk(kid, below, "└─ " if i == len(kids) - 1 else "├─ ")

    for root in children[None]:
        walk(root, "", "")
    return render_table(
        ordered, ("actor", *ACTOR_COLUMNS, "last_message_age_s"), only=True, empty="(no actors)"
    )


def render_inspect(data: dict[str, Any]) -> str:
    flags = f"paused: {_cell(data.get('paused'))}   parked: {_cell(data.get('parked'))}"
    position = data.get("position")
    lines = [f"{data.get('symbol')}   {flags}", f"position: {_cell(position) if position else 'flat'}"]
    for tf in data.get("timeframes") or []:
        warm = "warm" if tf.get("warm") else "warming up"
        gap = "UNREPAIRED GAP" if tf.get("unrepaired_gap") else "no gap"
        indicators = tf.get("indicators") or {}
        values = (
            "  ".join(f"{name} {_cell(value)}" for name, value in indicators.items())
            if tf.get("strategy") == "v2"
            else f"sma_short {_cell(tf.get('sma_short'))}  sma_long {_cell(tf.get('sma_long'))}"
        )
        lines.append(f"{tf.get('timeframe')}  {warm}  {gap}  side {_cell(tf.get('side'))}  {values}")
        lines.append(f"    pending: {_cell(tf.get('pending'))}")
        lines.append(f"    last decision: {_cell(tf.get('last_decision'))}")
        klines = tf.get("last_klines") or []
        if klines:
            table = render_table(klines if isinstance(klines[0], dict) else [{"kline": k} for k in klines])
            lines.extend(f"    {row}" for row in table.splitlines())
    lines.append(CLOCK_NOTE)
    return "\n".join(lines) + "\n"


def render_table(
    rows: list[Any], columns: tuple[str, ...] = (), *, only: bool = False, empty: str = "(none)"
) -> str:
    """Aligned columns: ``columns`` first, then (unless ``only``) other keys in first-seen order."""
    if not rows:
        return empty + "\n"
    extra = [] if only else [k for row in rows for k in row]
    keys = list(dict.fromkeys([*columns, *extra]))
    cells = [[_cell(row.get(k), k) for k in keys] for row in rows]
    numeric = [
        not _is_time(k) and all(isinstance(row.get(k), int | float | type(None)) for row in rows)
        for k in keys
    ]
    headers = [_LS_HEADERS.get(k, k.removesuffix("_ms").upper() if _is_time(k) else k.upper()) for k in keys]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        parts = (v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True))
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(c) for c in cells)]) + "\n"


def _is_time(key: str) -> bool:
    """``opened_at_ms``, ``signal_open_time_ms``, ...: a moment in Unix milliseconds (not a duration)."""
    return key.endswith(("_at_ms", "time_ms"))


def _label(key: str) -> str:
    """A time column is shown as a moment, so its ``_ms`` goes."""
    return key.removesuffix("_ms") if _is_time(key) else key


def _cell(value: Any, key: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if _is_time(key) and isinstance(value, int) and value > 0:
        return datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    if key in _SECONDS_PLAIN and isinstance(value, int | float):
        return f"{value:.3f}" if key != "wait_per_wakeup_us" else f"{value:.1f}"
    if key.endswith("_s") and isinstance(value, int | float) and key != "msgs_per_s":
        return _duration(float(value))
    if isinstance(value, float):
        return f"{value:.1f}" if key == "msgs_per_s" else f"{value:.10g}"
    if isinstance(value, dict):
        return (
            "  ".join(
                f"{k.removesuffix('_ms') if _is_time(k) else k}={_cell(v, k)}" for k, v in value.items()
            )
            or "-"
        )
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value) or "-"
    return str(value)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
    return f"{hours // 24}d{hours % 24:02d}h"
