"""Drive an already-running local exchange (``nancemakina exchange``) over its ``/sim/v1`` admin API.

Used when ``replay.exchange_url`` is set: the bot then pairs with an exchange in another process — so the
bot can be killed and restarted while the exchange, its positions and its orders live on.
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

    def _call(self, method: str, path: str, **params: Any) -> Any:
        response = self._http.request(method, f"{self.rest_url}/sim/v1/{path}", params=params, timeout=10)
        response.raise_for_status()
        return response.json()

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
