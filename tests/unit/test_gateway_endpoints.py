"""Endpoints URLs and the pinned python-binance client: a local venue can only ever reach its loopback root."""

from __future__ import annotations

import pytest
import requests

from nancemakina.actors.exchange.endpoints import (
    Endpoints,
    EndpointViolation,
    TimeSource,
    client_urls,
    make_client,
)

REST = "http://127.0.0.1:59999"
WS = "ws://127.0.0.1:59999/"


def test_every_client_url_of_a_local_venue_is_under_the_loopback_root():
    client = make_client(Endpoints.local(REST, WS), "k", "s", 3.0)
    urls = client_urls(client)
    assert len(urls) >= 20
    for name, url in urls.items():
        assert url.startswith((REST + "/", WS)), f"{name} = {url}"
    assert client.FUTURES_URL == REST + "/fapi"
    assert client.FUTURES_COIN_URL == REST + "/dapi"
    assert client.API_URL == REST + "/api"
    assert client.session.trust_env is False


def test_library_url_builders_stay_local():
    client = make_client(Endpoints.local(REST, WS), "k", "s", 3.0)
    assert client._create_futures_api_uri("algoOrder").startswith(REST + "/fapi/v1/")
    assert client._create_futures_api_uri("positionRisk", 3) == REST + "/fapi/v3/positionRisk"
    assert client._create_futures_coin_api_url("algoOrder") == REST + "/dapi/v1/algoOrder"
    assert client._create_api_uri("time", signed=False).startswith(REST + "/api/")
    assert client._create_margin_api_uri("x").startswith(REST)
    assert client._create_papi_api_uri("x").startswith(REST)
    assert client._create_futures_data_api_uri("x").startswith(REST)


def test_requests_outside_the_roots_are_refused_unsent():
    client = make_client(Endpoints.local(REST, WS), "k", "s", 3.0)
    with pytest.raises(EndpointViolation):
        client.session.get("https://fapi.binance.com/fapi/v1/ping")
    with pytest.raises(EndpointViolation):
        client.session.get("http://127.0.0.1:1/fapi/v1/ping")  # another loopback port
    client.FUTURES_URL = "https://fapi.binance.com/fapi"  # even if someone re-points the client
    with pytest.raises(EndpointViolation):
        client.futures_ping()
    assert isinstance(EndpointViolation("x"), requests.RequestException)


def test_client_settings():
    client = make_client(Endpoints.local(REST, WS), "k", "s", 2.5, recv_window_ms=3000)
    assert client.REQUEST_TIMEOUT == 2.5
    assert client.REQUEST_RECVWINDOW == 3000
    assert client.testnet is False
    assert client.timestamp_offset == 0


@pytest.mark.parametrize(
    ("rest", "ws"),
    [
        ("http://10.0.0.1:80", WS),
        ("https://127.0.0.1:80", WS),
        ("http://example.com", WS),
        (REST, "wss://fstream.binance.com/"),
        (REST, "ws://192.168.1.1:1/"),
        ("http://user@127.0.0.1:80", WS),
    ],
)
def test_local_venue_rejects_non_loopback(rest, ws):
    with pytest.raises(ValueError, match="loopback"):
        Endpoints.local(rest, ws)


def test_local_accepts_ipv6_and_localhost():
    assert Endpoints.local("http://[::1]:8765", "ws://[::1]:8765").fstream_url == "ws://[::1]:8765/"
    venue = Endpoints.local("http://localhost:8765/", "ws://localhost:8765/")
    assert venue.fapi_url == "http://localhost:8765/fapi"
    assert venue.time_source is TimeSource.API


def test_binance_venues():
    live = Endpoints.binance(testnet=False)
    assert live.fapi_url == "https://fapi.binance.com/fapi"
    assert live.dapi_url == "https://dapi.binance.com/dapi"
    assert live.fstream_url == "wss://fstream.binance.com/"
    assert live.time_source is TimeSource.FUTURES
    test = Endpoints.binance(testnet=True)
    assert test.fapi_url == "https://testnet.binancefuture.com/fapi"
    assert test.dapi_url == "https://testnet.binancefuture.com/dapi"
    assert test.dstream_url == "wss://dstream.binancefuture.com/"
    client = make_client(test, None, None, 1.0)
    assert client._create_futures_api_uri("order") == "https://testnet.binancefuture.com/fapi/v1/order"
    with pytest.raises(EndpointViolation):
        client.session.get("https://fapi.binance.com/fapi/v1/ping")
