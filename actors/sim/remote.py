"""Drive an already-running local exchange (``nancemakina exchange``) over its ``/sim/v1`` admin API.

Used when ``replay.exchange_url`` is set: the bot then pairs with an exchange in another process — so the
bot can be killed and restarted while the exchange, its positions and its orders live on. Tests and the
chaos soak use the same client to arm faults and to read the exchange's own state.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from .config import DEFAULT_API_KEY, DEFAULT_API_SECRET, MAX_SPEED


class RemoteExchange:
    """The subset of ``LocalExchange`` the daemon uses, over HTTP on loopback."""

    def __init__(
        self, url: str, *, api_key: str = DEFAULT_API_KEY, api_secret: str = DEFAULT_API_SECRET
    ) -> None:
        self.rest_url = url.rstrip("/")
        self.ws_url = self.rest_url.replace("http://", "ws://", 1) + "/"
        self.api_key = api_key
        self.api_secret = api_secret
        self._http = requests.Session()
        self._http.trust_env = False  # loopback only: never through a proxy from the environment
        status = self.status()
        self.speed = MAX_SPEED if status.get("speed") in (None, "max") else float(status["speed"])

    def _call(self, verb: str, route: str, /, **params: Any) -> Any:
        response = self._http.request(verb, f"{self.rest_url}/sim/v1/{route}", params=params, timeout=10)
        if response.status_code == 400:
            raise ValueError(f"local exchange refused /sim/v1/{route} {params}: {response.text[:300]}")
        response.raise_for_status()
        return response.json()

    # --- the exchange's own view ---------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Balances, positions, open algo orders and marks."""
        result: dict[str, Any] = self._call("GET", "state")
        return result

    def exposure(self, since_s: float = 0.0) -> dict[str, Any]:
        """Positions without a stop, timed on the exchange's wall clock."""
        result: dict[str, Any] = self._call("GET", "exposure", since=since_s)
        return result

    def faults(self, since_s: float = 0.0) -> dict[str, Any]:
        """Armed faults, and the faults fired since wall time ``since_s``: [time, kind, what it hit]."""
        result: dict[str, Any] = self._call("GET", "faults", since=since_s)
        return result

    def orders(self, after: int = 0) -> list[dict[str, Any]]:
        """Regular orders with an order id above ``after``, oldest first."""
        result: list[dict[str, Any]] = self._call("GET", "orders", after=after)
        return result

    # --- faults --------------------------------------------------------------------------------------

    def fail_next(
        self,
        kind: str,
        count: int = 1,
        *,
        path: str = "",
        method: str = "",
        retry_after_s: int = 1,
        seconds: float = 0.0,
        skip: int = 0,
        for_s: float = 0.0,
    ) -> None:
        """Answer the next ``count`` matching requests (after ``skip`` of them), or every one for ``for_s``
        seconds, with ``kind`` (see ``faults.HTTP_FAULT_KINDS``)."""
        self._call(
            "POST", "faults/http", kind=kind, count=count, path=path, method=method,
            retryAfter=retry_after_s, seconds=seconds, skip=skip, **({"for": for_s} if for_s else {}),
        )  # fmt: skip

    def reject_next_order(self, code: int, msg: str = "") -> None:
        self._call("POST", "faults/reject-order", code=code, **({"msg": msg} if msg else {}))

    def set_latency(self, seconds: float, path: str = "") -> None:
        self._call("POST", "faults/latency", seconds=seconds, path=path)

    def drop_connections(self) -> int:
        return int(self._call("POST", "faults/drop-connections")["dropped"])

    def stall_stream(self, seconds: float, stream: str = "") -> None:
        self._call("POST", "faults/stall", seconds=seconds, stream=stream)

    def expire_listen_key(self) -> list[str]:
        return list(self._call("POST", "faults/expire-listen-key")["expired"])

    def damage_frames(self, kind: str, count: int = 1, target: str = "market") -> None:
        self._call("POST", "faults/ws-frame", kind=kind, count=count, target=target)

    def expire_next_stops(
        self, count: int = 1, *, after_s: float = 0.5, status: str = "EXPIRED", symbol: str = ""
    ) -> None:
        self._call("POST", "faults/expire-stop", count=count, after=after_s, status=status, symbol=symbol)

    def skew_clock(self, ms: int) -> None:
        self._call("POST", "faults/clock-skew", ms=ms)

    def clear_faults(self) -> None:
        self._call("POST", "faults/clear")

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "status")
        return result

    @property
    def clock_ms(self) -> int:
        """The replay's simulated clock (one status request)."""
        return int(self.status().get("clockMs", 0))

    def register_pacer(self, interval: str = "1m") -> str:
        return str(self._call("POST", "pacer", interval=interval)["pacerId"])

    def ack(self, pacer_id: str, open_time: int) -> None:
        self._call("POST", f"pacer/{pacer_id}/ack", openTime=open_time)

    def unregister_pacer(self, pacer_id: str) -> None:
        self._call("DELETE", f"pacer/{pacer_id}")

    def resume(self) -> None:
        self._call("POST", "resume")

    def wait_until_done(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.status().get("done"):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.2)

    def stop(self) -> None:
        self._http.close()
