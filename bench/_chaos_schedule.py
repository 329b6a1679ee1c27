"""The chaos soak's schedule: a seeded list of what happens to the bot and when (same seed, same schedule).

Every fault the local exchange can inject (``/sim/v1/faults``), plus kill -9 and restart of the bot and SIGHUP
reloads (good and bad), spread over the run by a seeded random generator. ``Event`` is plain data: the soak
applies it (``apply``) and the observer reads the windows it opens (outages, injected latency, bot down).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from typing import Any

from nancemakina.actors.sim.remote import RemoteExchange

ORDER = "/fapi/v1/order"
ALGO = "/fapi/v1/algoOrder"
READ_PATHS = (
    ("/fapi/v1/order", "GET"),
    ("/fapi/v1/algoOrder", "GET"),
    ("/fapi/v3/positionRisk", "GET"),
    ("/fapi/v1/openAlgoOrders", "GET"),
    ("/fapi/v1/klines", "GET"),
    ("/fapi/v1/listenKey", ""),
    ("", ""),
)
WRITE_PATHS = ((ORDER, "POST"), (ALGO, "POST"), (ALGO, "DELETE"))
ANSWERED = ("500", "502", "503", "504", "html", "-1021")
"""HTTP faults answered instead of the request (not executed)."""
DAMAGED = ("unknown", "truncated", "empty", "reset", "slow")
"""HTTP faults that let the request execute and lose or damage its answer."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One thing that happens ``at`` seconds into the run."""

    at: float
    kind: str
    """``http``, ``ws-frame``, ``drop``, ``stall``, ``latency``, ``listen-key``, ``reject``, ``expire-stop``,
    ``clock-skew``, ``outage`` (every new order refused for ``seconds``), ``kill`` (kill -9, then restart
    after ``seconds``), ``reload`` (SIGHUP; ``valid`` or not)."""
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    """How long the event's window lasts (outage, latency, skew, stall, the bot down)."""


# (kind, weight): how often each kind is drawn
KINDS: tuple[tuple[str, float], ...] = (
    ("http-read", 6.0),
    ("http-write", 4.0),
    ("ws-frame", 3.0),
    ("drop", 1.0),
    ("stall", 1.0),
    ("latency", 1.0),
    ("listen-key", 0.7),
    ("reject", 1.5),
    ("expire-stop", 1.5),
    ("clock-skew", 0.7),
    ("outage", 0.5),
    ("kill", 1.0),
    ("reload", 1.0),
)


def schedule(
    seed: int, duration_s: float, *, mean_gap_s: float = 3.0, quiet_end_s: float = 20.0
) -> list[Event]:
    """Events from 8 s in to ``quiet_end_s`` before the end (the run then settles), drawn from ``seed``."""
    rng = random.Random(seed)
    kinds, weights = zip(*KINDS, strict=True)
    events: list[Event] = []
    t = 8.0
    while True:
        t += rng.expovariate(1.0 / mean_gap_s)
        if t >= duration_s - quiet_end_s:
            return events
        events.append(_draw(rng, rng.choices(kinds, weights)[0], round(t, 3)))


def _draw(rng: random.Random, kind: str, at: float) -> Event:
    if kind == "http-read":
        path, method = rng.choice(READ_PATHS)
        fault = rng.choice((*ANSWERED, "unknown", "truncated", "empty", "reset", "429", "418"))
        return Event(at=at, kind="http", params=_http(rng, fault, path, method))
    if kind == "http-write":
        path, method = rng.choice(WRITE_PATHS)
        fault = rng.choice((*ANSWERED, *DAMAGED))
        return Event(at=at, kind="http", params=_http(rng, fault, path, method))
    if kind == "ws-frame":
        params = {
            "kind": rng.choice(("malformed", "truncated", "unknown-stream")),
            "count": rng.randint(1, 3),
            "target": rng.choice(("market", "market", "user")),
        }
        return Event(at=at, kind="ws-frame", params=params)
    if kind == "stall":
        return Event(at=at, kind="stall", seconds=round(rng.uniform(0.5, 3.0), 2))
    if kind == "latency":
        path = rng.choice(("", ORDER, ALGO, "/fapi/v1/klines"))
        params = {"path": path, "latency": round(rng.uniform(0.1, 0.6), 2)}
        return Event(at=at, kind="latency", params=params, seconds=round(rng.uniform(2.0, 6.0), 1))
    if kind == "reject":
        return Event(at=at, kind="reject", params={"code": rng.choice((-2021, -2019, -1111, -4164))})
    if kind == "expire-stop":
        params = {"status": rng.choice(("EXPIRED", "CANCELED")), "after": round(rng.uniform(0.1, 2.0), 2)}
        return Event(at=at, kind="expire-stop", params=params)
    if kind == "clock-skew":
        ms = rng.choice((-1, 1)) * rng.randint(2_000, 8_000)
        return Event(at=at, kind="clock-skew", params={"ms": ms}, seconds=round(rng.uniform(3.0, 10.0), 1))
    if kind == "outage":
        return Event(
            at=at, kind="outage", params={"kind": rng.choice(("503", "502"))}, seconds=rng.uniform(1, 4)
        )
    if kind == "kill":
        return Event(at=at, kind="kill", seconds=round(rng.uniform(0.5, 3.0), 2))
    if kind == "reload":
        return Event(at=at, kind="reload", params={"valid": rng.random() < 0.8, "variant": rng.randint(0, 3)})
    return Event(at=at, kind=kind)


def _http(rng: random.Random, fault: str, path: str, method: str) -> dict[str, Any]:
    params: dict[str, Any] = {"kind": fault, "count": rng.randint(1, 4), "path": path, "method": method}
    if fault in {"429", "418"}:
        params["retry_after_s"] = rng.randint(1, 3)
    if fault == "slow":
        params["seconds"] = round(rng.uniform(2.5, 4.0), 2)  # past the bot's 2 s request timeout
    return params


def digest(events: list[Event]) -> str:
    """A short fingerprint of the schedule: equal for equal seeds."""
    text = json.dumps([asdict(e) for e in events], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def apply_exchange_fault(remote: RemoteExchange, event: Event) -> None:
    """Arm what ``event`` does to the exchange (kill, reload and the end of windows are the soak's)."""
    p = event.params
    if event.kind == "http":
        remote.fail_next(
            p["kind"], p["count"], path=p["path"], method=p["method"],
            retry_after_s=p.get("retry_after_s", 1), seconds=p.get("seconds", 0.0),
        )  # fmt: skip
    elif event.kind == "ws-frame":
        remote.damage_frames(p["kind"], p["count"], target=p["target"])
    elif event.kind == "drop":
        remote.drop_connections()
    elif event.kind == "stall":
        remote.stall_stream(event.seconds)
    elif event.kind == "latency":
        remote.set_latency(p["latency"], path=p["path"])
    elif event.kind == "listen-key":
        remote.expire_listen_key()
    elif event.kind == "reject":
        remote.reject_next_order(p["code"])
    elif event.kind == "expire-stop":
        remote.expire_next_stops(1, after_s=p["after"], status=p["status"])
    elif event.kind == "clock-skew":
        remote.skew_clock(p["ms"])
    elif event.kind == "outage":
        for path in (ORDER, ALGO):
            remote.fail_next(p["kind"], path=path, method="POST", for_s=event.seconds)


def end_exchange_fault(remote: RemoteExchange, event: Event) -> None:
    """Close the window ``event`` opened (latency and clock skew)."""
    if event.kind == "latency":
        remote.set_latency(0.0)
    elif event.kind == "clock-skew":
        remote.skew_clock(0)
