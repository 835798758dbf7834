"""One leaky bucket per process, mirroring the Gorgias account's rate limit.

Every request, from every sink and thread, takes a unit from ``Pacer.acquire`` before
it goes out. The bucket starts from the configured limit and corrects itself from the
``X-Gorgias-Account-Api-Call-Limit: used/limit`` header of every answer (another client
may share the account), and a 429's ``Retry-After`` pauses every thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

HEADER = "X-Gorgias-Account-Api-Call-Limit"


class Stopped(Exception):
    """The run is stopping: no new request may start."""


def parse_limit_header(value: str | None) -> tuple[int, int] | None:
    """``"10/40"`` -> ``(10, 40)``; None when absent or malformed."""
    if not value:
        return None
    used, sep, limit = value.partition("/")
    try:
        parsed = int(used.strip()), int(limit.strip())
    except ValueError:
        return None
    return parsed if sep and parsed[1] > 0 and parsed[0] >= 0 else None


class Pacer:
    """A thread-safe leaky bucket: ``limit`` requests, draining ``limit / window`` per second.

    ``margin`` slots are kept free so that our count, taken just before a request leaves,
    never runs ahead of the server's count, taken when it arrives.
    """

    def __init__(self, limit: int, window: float, *, margin: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.capacity = float(limit)
        self.rate = limit / window
        self.margin = margin if limit > margin + 1 else 0
        self.level = 0.0
        self._clock = clock
        self._updated = clock()
        self._paused_until = 0.0
        self._cond = threading.Condition()
        self.waited = 0.0
        self.stop = threading.Event()

    def _leak(self, now: float) -> None:
        self.level = max(0.0, self.level - (now - self._updated) * self.rate)
        self._updated = now

    def acquire(self) -> float:
        """Block until a request may go out; return the seconds waited.

        Raises ``Stopped`` once ``stop`` is set, so a stopping run starts nothing new.
        """
        waited = 0.0
        while True:
            if self.stop.is_set():
                raise Stopped
            with self._cond:
                now = self._clock()
                self._leak(now)
                if now < self._paused_until:
                    delay = self._paused_until - now
                elif self.level + 1 <= self.capacity - self.margin:
                    self.level += 1
                    self.waited += waited
                    return waited
                else:
                    delay = (self.level + 1 - (self.capacity - self.margin)) / self.rate
            delay = max(delay, 0.001)
            self.stop.wait(delay)
            waited += delay

    def observe(self, header: str | None) -> None:
        """Correct the bucket from a ``used/limit`` header: adopt a lower limit, a higher use."""
        parsed = parse_limit_header(header)
        if parsed is None:
            return
        used, limit = parsed
        with self._cond:
            self._leak(self._clock())
            if limit < self.capacity:
                self.capacity = float(limit)
                self.rate = limit / self.window
                self.margin = min(self.margin, max(0, limit - 2))
            if used > self.level:
                self.level = float(min(used, self.capacity))

    def pause(self, seconds: float) -> None:
        """Hold every thread for ``seconds`` (a 429's Retry-After): the bucket is full."""
        with self._cond:
            now = self._clock()
            self._leak(now)
            self._paused_until = max(self._paused_until, now + seconds)
            self.level = self.capacity
