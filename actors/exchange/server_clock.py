"""``ServerClock``: the venue's clock, measured once and then tracked, shared by every gateway of one venue.

Two questions need the venue's time: what ``timestamp`` to sign a request with, and which candles are
closed. Asking ``GET /fapi/v1/time`` before each (as every klines read once did) doubled the requests of a
warm-up. Instead the offset between the venue's clock and ours is measured once (the round trip's midpoint)
and every later question is answered from the wall clock plus that offset:

* ``offset_ms`` signs requests (python-binance stamps ``time.time()`` plus ``timestamp_offset``);
* ``closed_bound_ms`` is a time the venue's clock has certainly passed, for "is this candle closed": the
  tracked time minus the sync's uncertainty (half its round trip) and ``margin_ms`` for drift since. A candle
  closing inside that margin is simply left to the stream, which delivers it anyway.

The local exchange closes candles on its *replay* clock, which runs at any speed and pauses, so no offset
tracks it. It reports that clock in the ``X-SIM-Clock-Ms`` header of every REST answer; the gateway reads the
header of each klines answer itself (exact), and ``observe`` keeps the latest value for the questions asked
before a request (a lower bound: the replay clock never goes back). The event time of every market frame is
observed too, so while the streams flow the replay clock is known without asking.

The offset is resynced by the next signed request that is not an order once it is older than
``resync_interval_s``, so an order never waits for a sync; a -1021 answer resyncs at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEFAULT_RESYNC_INTERVAL_S = 1800.0
DEFAULT_MARGIN_MS = 1000
"""Kept off the tracked time when deciding closedness: clock drift since the sync, an NTP step."""
OBSERVATION_TTL_S = 1.0
"""A replay clock seen longer ago than this is not offered as "now" before a request."""


class ServerClock:
    """One venue's clock (see the module docstring); thread-safe."""

    def __init__(
        self,
        *,
        tracks_wall_clock: bool = True,
        resync_interval_s: float = DEFAULT_RESYNC_INTERVAL_S,
        margin_ms: int = DEFAULT_MARGIN_MS,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tracks_wall_clock = tracks_wall_clock
        """False for the local exchange: its candles close on the replay clock, not on the wall clock."""
        self.resync_interval_s = resync_interval_s
        self.margin_ms = margin_ms
        self._wall = wall
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._offset_ms: int | None = None
        self._uncertainty_ms = 0
        self._synced_at = 0.0
        self._observed: tuple[int, float] | None = None
        self.syncs = 0

    # --- measuring ---------------------------------------------------------------------------------

    def record_sync(self, server_ms: int, sent_s: float, received_s: float) -> int:
        """A time request sent at ``sent_s`` and answered at ``received_s`` (our wall clock) said
        ``server_ms``; returns the offset now in force."""
        offset = server_ms - round((sent_s + received_s) * 500)
        with self._lock:
            self._offset_ms = offset
            self._uncertainty_ms = max(0, round((received_s - sent_s) * 500))
            self._synced_at = self._monotonic()
            self.syncs += 1
        return offset

    def observe(self, replay_clock_ms: int) -> None:
        """An answer of the local exchange carried its replay clock (``X-SIM-Clock-Ms``), or one of its
        frames its event time (``E``)."""
        now = self._monotonic()
        with self._lock:
            if self._observed is None or replay_clock_ms >= self._observed[0]:
                self._observed = (replay_clock_ms, now)

    # --- answering ---------------------------------------------------------------------------------

    def replay_ms(self) -> int | None:
        """The local exchange's replay clock as last seen (an answer's header, a frame's event time), when
        seen within ``OBSERVATION_TTL_S``; None otherwise. A lower bound of the replay clock now."""
        with self._lock:
            observed = self._observed
        if observed is None or self._monotonic() - observed[1] > OBSERVATION_TTL_S:
            return None
        return observed[0]

    @property
    def offset_ms(self) -> int | None:
        """Venue clock minus our wall clock, in ms; None before the first sync."""
        return self._offset_ms

    def sync_due(self) -> bool:
        """Never synced, or synced longer ago than ``resync_interval_s``."""
        return self._offset_ms is None or self._monotonic() - self._synced_at > self.resync_interval_s

    def never_synced(self) -> bool:
        return self._offset_ms is None

    def closed_bound_ms(self) -> int | None:
        """A time the venue's market clock has certainly reached, without asking; None when unknown.

        Wall-clock venues: the tracked time minus the sync's uncertainty and ``margin_ms``. The local
        exchange: its replay clock as last seen, when seen within ``OBSERVATION_TTL_S``.
        """
        if not self.tracks_wall_clock:
            return self.replay_ms()
        with self._lock:
            if self._offset_ms is None:
                return None
            return round(self._wall() * 1000) + self._offset_ms - self._uncertainty_ms - self.margin_ms
