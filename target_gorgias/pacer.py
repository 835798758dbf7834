"""One leaky bucket per process, mirroring the Gorgias account's rate limit.

Every request, from every sink and thread, takes a unit from ``Pacer.acquire`` before
it goes out. The bucket starts from the configured limit and corrects itself from the
``X-Gorgias-Account-Api-Call-Limit: used/limit`` header of every answer (another client
may share the account), and a 429's ``Retry-After`` pauses every thread.

This is the pacer used when no shared store is configured or reachable (see
``shared_pacer``), so it also adapts to other clients of the account (AIMD on ``usable``,
the part of the bucket it lets itself fill): it starts with a small burst that grows by one
per request sent (a lone run, whose requests in flight are few, is not slowed); once the
header shows someone else's requests, or a 429 arrives, it grows only by
``ADDITIVE_STEP`` per request, and each 429 halves it. Runs that share an account without a
shared store so converge on their share quickly and waste few requests on 429s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

HEADER = "X-Gorgias-Account-Api-Call-Limit"
#: AIMD: after a 429, each request sent lets the run's usable share of the bucket grow by this.
ADDITIVE_STEP = 0.1
#: Slow start: how many units a run may take before it has taken any (grows by one per unit
#: taken, up to the limit; halves on a 429), so runs starting together do not all burst.
SLOW_START = 2
#: AIMD: 429s within this many seconds of a decrease count as the same congestion event.
DECREASE_COOLDOWN = 1.0


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


class WaitClock:
    """Wall-clock seconds during which at least one thread was waiting (never a sum)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting = 0
        self._since = 0.0
        self._total = 0.0

    def begin(self) -> None:
        """A thread starts waiting."""
        with self._lock:
            if self._waiting == 0:
                self._since = self._clock()
            self._waiting += 1

    def end(self) -> None:
        """A thread stops waiting."""
        with self._lock:
            self._waiting -= 1
            if self._waiting == 0:
                self._total += self._clock() - self._since

    @property
    def seconds(self) -> float:
        """Seconds so far (a wait in progress counts up to now)."""
        with self._lock:
            running = self._clock() - self._since if self._waiting else 0.0
            return self._total + running


class Usage:
    """How much of the account's allowance this run took: granted units over time."""

    def __init__(self) -> None:
        self.granted = 0
        self.first = 0.0
        self.last = 0.0

    def grant(self, now: float) -> None:
        """Count one unit taken at ``now``."""
        if not self.granted:
            self.first = now
        self.granted += 1
        self.last = now

    def share(self, capacity: float, rate: float) -> float:
        """Units taken over what the account allowed while this run sent (0..1)."""
        if not self.granted:
            return 0.0
        allowed = capacity + rate * (self.last - self.first)
        return min(1.0, self.granted / allowed) if allowed > 0 else 0.0


class Pacer:
    """A thread-safe leaky bucket: ``limit`` requests, draining ``limit / window`` per second.

    ``margin`` slots are kept free so that our count, taken just before a request leaves,
    never runs ahead of the server's count, taken when it arrives.
    """

    #: Said in the summary line: why this run's pacing was not shared.
    mode = "not shared"

    def __init__(self, limit: int, window: float, *, margin: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.capacity = float(limit)
        self.full_rate = limit / window
        self.rate = self.full_rate
        self.margin = margin if limit > margin + 1 else 0
        self.level = 0.0
        self.usable = min(self.capacity - self.margin, float(SLOW_START))
        self._clock = clock
        self._updated = clock()
        self._paused_until = 0.0
        self._decreased_at = -1e9
        self._congested = False
        self._cond = threading.Condition()
        self._wait_clock = WaitClock(clock)
        self.usage = Usage()
        self.stop = threading.Event()

    @property
    def waited(self) -> float:
        """Wall-clock seconds during which at least one thread waited for the rate limit."""
        return self._wait_clock.seconds

    def _leak(self, now: float) -> None:
        self.level = max(0.0, self.level - (now - self._updated) * self.rate)
        self._updated = now

    def acquire(self) -> float:
        """Block until a request may go out; return the seconds this thread waited.

        Raises ``Stopped`` once ``stop`` is set, so a stopping run starts nothing new.
        """
        waited = 0.0
        try:
            while True:
                if self.stop.is_set():
                    raise Stopped
                with self._cond:
                    now = self._clock()
                    self._leak(now)
                    if now < self._paused_until:
                        delay = self._paused_until - now
                    elif self.level + 1 <= self.usable:
                        self.level += 1
                        grow = ADDITIVE_STEP if self._congested else 1.0  # slow start
                        self.usable = min(self.capacity - self.margin, self.usable + grow)
                        self.usage.grant(now)
                        return waited
                    else:
                        delay = (self.level + 1 - self.usable) / self.rate
                delay = max(delay, 0.001)
                if not waited:
                    self._wait_clock.begin()
                self.stop.wait(delay)
                waited += delay
        finally:
            if waited:
                self._wait_clock.end()

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
                self.full_rate = limit / self.window
                self.rate = min(self.rate, self.full_rate)
                self.margin = min(self.margin, max(0, limit - 2))
                self.usable = min(self.usable, self.capacity - self.margin)
            if used > self.level + 1:
                self._congested = True  # someone else uses the account: grow slowly
            if used > self.level:
                self.level = float(min(used, self.capacity))

    def pause(self, seconds: float) -> None:
        """Hold every thread for ``seconds`` (a 429's Retry-After): the bucket is full.

        A 429 also halves ``usable`` (once per congestion event): someone else uses the account.
        """
        with self._cond:
            now = self._clock()
            self._leak(now)
            self._paused_until = max(self._paused_until, now + seconds)
            self.level = self.capacity
            if now - self._decreased_at >= DECREASE_COOLDOWN:
                self._decreased_at = now
                self._congested = True
                self.usable = max(min(2.0, self.capacity - self.margin), self.usable / 2)

    def describe(self) -> str:
        """For the summary: the share of the account's rate this run got, and how it paced."""
        share = self.usage.share(self.capacity - self.margin, self.full_rate)
        return f"this run used {share:.0%} of the account's rate ({self.mode})"
