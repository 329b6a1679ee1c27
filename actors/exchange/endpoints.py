"""Where a mode's requests go: ``Endpoints`` (base URLs) and ``make_client`` (python-binance pinned to it).

python-binance 1.0.37 builds every REST URL from instance attributes: ``API_URL`` (+ ``_TESTNET_``/
``_DEMO_`` variants) for ``/api/v3/ping|time``, ``FUTURES_URL`` for ``/fapi/v{1,2,3}/...`` (algo orders
included: ``/fapi/v1/algoOrder``), ``FUTURES_COIN_URL`` for ``/dapi/v1/...``, ``FUTURES_DATA_URL`` and
``FUTURES_COIN_DATA_URL`` for ``/futures/data``; ``testnet=True`` only swaps in the ``*_TESTNET_URL``
attributes. ``make_client`` sets all of them on the instance (never on the class) and mounts a
transport adapter that refuses any URL outside the venue's roots, so a local venue can never reach
the internet whatever the library or a caller does.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import requests
from binance import Client
from requests.adapters import HTTPAdapter

_LOOPBACK_NAMES = frozenset({"localhost"})
SIM_CLOCK_HEADER = "X-SIM-Clock-Ms"
"""Header of every local-exchange REST answer: the replay clock (ms), i.e. the time its klines have reached.

The local exchange's ``/fapi/v1/time`` is the wall clock, as Binance's is; which candles are closed is
decided by the replay clock, so on a local venue the gateway reads it from this header."""


class TimeSource(StrEnum):
    """Endpoint whose clock signed timestamps are synced to."""

    FUTURES = "futures"
    """``/fapi/v1/time``: the clock of the server that checks the timestamp (Binance)."""
    API = "api"
    """``/api/v3/time``: the wall clock python-binance itself syncs to (the local exchange serves it)."""


class EndpointViolation(requests.exceptions.InvalidURL):
    """A request was aimed outside the venue's roots: a programming error, never sent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoints:
    """Base URLs of one venue. REST roots end without a slash; WS roots end with one (``wss://host/``)."""

    name: str
    api_url: str
    """``.../api``: python-binance's ``/api/v3/ping`` and ``/api/v3/time``."""
    fapi_url: str
    """``.../fapi`` (USDⓈ-M)."""
    dapi_url: str
    """``.../dapi`` (COIN-M)."""
    fapi_data_url: str
    dapi_data_url: str
    fstream_url: str
    """USDⓈ-M WebSocket root for ``BinanceSocketManager.FSTREAM_URL``."""
    dstream_url: str
    """COIN-M WebSocket root for ``BinanceSocketManager.DSTREAM_URL``."""
    time_source: TimeSource = TimeSource.FUTURES
    is_local: bool = False

    @classmethod
    def binance(cls, *, testnet: bool) -> Endpoints:
        """Binance's production or futures-testnet URLs (python-binance 1.0.37's constants)."""
        if testnet:
            return cls(
                name="binance-testnet",
                api_url="https://testnet.binance.vision/api",
                fapi_url="https://testnet.binancefuture.com/fapi",
                dapi_url="https://testnet.binancefuture.com/dapi",
                fapi_data_url="https://testnet.binancefuture.com/futures/data",
                dapi_data_url="https://testnet.binancefuture.com/futures/data",
                fstream_url="wss://fstream.binancefuture.com/",
                dstream_url="wss://dstream.binancefuture.com/",
            )
        return cls(
            name="binance",
            api_url="https://api.binance.com/api",
            fapi_url="https://fapi.binance.com/fapi",
            dapi_url="https://dapi.binance.com/dapi",
            fapi_data_url="https://fapi.binance.com/futures/data",
            dapi_data_url="https://dapi.binance.com/futures/data",
            fstream_url="wss://fstream.binance.com/",
            dstream_url="wss://dstream.binance.com/",
        )

    @classmethod
    def local(cls, rest_root: str, ws_root: str) -> Endpoints:
        """The local exchange: ``rest_root`` ``http://127.0.0.1:PORT``, ``ws_root`` ``ws://127.0.0.1:PORT/``.

        Raises ValueError unless both are plain http/ws URLs on a loopback host.
        """
        rest = rest_root.rstrip("/")
        ws = ws_root if ws_root.endswith("/") else ws_root + "/"
        _require_loopback(rest, {"http"})
        _require_loopback(ws, {"ws"})
        return cls(
            name="local",
            api_url=f"{rest}/api",
            fapi_url=f"{rest}/fapi",
            dapi_url=f"{rest}/dapi",
            fapi_data_url=f"{rest}/futures/data",
            dapi_data_url=f"{rest}/futures/data",
            fstream_url=ws,
            dstream_url=ws,
            time_source=TimeSource.API,
            is_local=True,
        )

    @property
    def rest_roots(self) -> tuple[str, ...]:
        return (self.api_url, self.fapi_url, self.dapi_url, self.fapi_data_url, self.dapi_data_url)

    @property
    def unsupported_url(self) -> str:
        """Where python-binance's other APIs (margin, options, portfolio, website) are pointed: a dead end."""
        return f"{self.api_url}/unsupported"


def _require_loopback(url: str, schemes: set[str]) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = host in _LOOPBACK_NAMES or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme not in schemes or not loopback or parts.query or parts.fragment or parts.username:
        raise ValueError(
            f"Endpoints.local: {url!r} must be a {'/'.join(sorted(schemes))}:// URL on a loopback host "
            "(127.0.0.1, ::1 or localhost); the local exchange binds to loopback only"
        )


class _PinnedAdapter(HTTPAdapter):
    """Sends only to URLs under the allowed roots; anything else raises ``EndpointViolation`` unsent."""

    def __init__(self, roots: tuple[str, ...]) -> None:
        super().__init__(max_retries=0)
        self._roots = tuple(r.rstrip("/") + "/" for r in roots)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        if not url.startswith(self._roots):
            raise EndpointViolation(f"refused a request outside the venue's roots: {urlsplit(url).netloc}")
        return super().send(request, *args, **kwargs)


_URL_ATTRS: dict[str, str] = {
    "API_URL": "api_url",
    "API_TESTNET_URL": "api_url",
    "API_DEMO_URL": "api_url",
    "FUTURES_URL": "fapi_url",
    "FUTURES_TESTNET_URL": "fapi_url",
    "FUTURES_DEMO_URL": "fapi_url",
    "FUTURES_DATA_URL": "fapi_data_url",
    "FUTURES_DATA_TESTNET_URL": "fapi_data_url",
    "FUTURES_COIN_URL": "dapi_url",
    "FUTURES_COIN_TESTNET_URL": "dapi_url",
    "FUTURES_COIN_DEMO_URL": "dapi_url",
    "FUTURES_COIN_DATA_URL": "dapi_data_url",
    "FUTURES_COIN_DATA_TESTNET_URL": "dapi_data_url",
}
_DEAD_END_ATTRS = ("MARGIN_API_URL", "WEBSITE_URL", "OPTIONS_URL", "OPTIONS_TESTNET_URL", "PAPI_URL")


def make_client(
    endpoints: Endpoints,
    api_key: str | None,
    api_secret: str | None,
    timeout_s: float,
    *,
    recv_window_ms: int = 5000,
) -> Client:
    """A python-binance ``Client`` whose every REST URL is under the ``endpoints``' roots; no request is made.

    The constructor's ping is skipped (``ping=False``); proxies from the environment are ignored for a
    local venue; ``REQUEST_TIMEOUT`` and ``REQUEST_RECVWINDOW`` are set on the instance.
    """
    client = Client(api_key, api_secret, ping=False)
    for attr, field in _URL_ATTRS.items():
        setattr(client, attr, getattr(endpoints, field))
    for attr in _DEAD_END_ATTRS:
        setattr(client, attr, endpoints.unsupported_url)
    # The WebSocket API clients are created in the constructor with Binance's URLs; they only connect
    # when a ws_* method is called (we never do), but a local venue must not even hold a remote URL.
    if endpoints.is_local:
        for ws_client, prefix, path in (
            (client.ws_api, "WS_API", "ws-api/v3"),
            (client.ws_future, "WS_FUTURES", "ws-fapi/v1"),
        ):
            url = endpoints.fstream_url + path
            for suffix in ("_URL", "_TESTNET_URL", "_DEMO_URL"):
                setattr(client, prefix + suffix, url)
            ws_client._url = url  # noqa: SLF001 - only way to re-point the library's WS API client
    client.testnet = False
    client.demo = False
    client.REQUEST_TIMEOUT = timeout_s
    client.REQUEST_RECVWINDOW = recv_window_ms
    session = client.session
    session.max_redirects = 0
    if endpoints.is_local:
        session.trust_env = False
    adapter = _PinnedAdapter((*endpoints.rest_roots, endpoints.unsupported_url))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return client


def client_urls(client: Client) -> dict[str, str]:
    """Every base URL attribute the client would use (for tests and diagnostics)."""
    urls = {name: str(getattr(client, name)) for name in dir(client) if name.endswith("_URL")}
    urls["ws_api"] = str(client.ws_api._url)  # noqa: SLF001
    urls["ws_future"] = str(client.ws_future._url)  # noqa: SLF001
    return urls
